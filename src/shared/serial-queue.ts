/**
 * Turn-taking for async operations: one builder handles one thing at a time,
 * and git's per-repository worktree bookkeeping tolerates one `worktree add`
 * or `remove` at a time. A failure does not block the queue: each operation
 * runs after everything queued before it has settled, whatever the outcome.
 * Node builtins only.
 */

export class SerialQueue {
  /** Settles when the last queued operation settles; never rejects. */
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  /** Runs `fn` after everything queued before it, whatever their outcome; resolves or rejects as `fn` does. */
  run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    this.queued++;
    const result = this.tail.then(() => fn());
    const done = () => {
      this.queued--;
    };
    this.tail = result.then(done, done);
    return result;
  }

  /** Resolves once everything queued so far has settled (a close waits for work in flight); never rejects. */
  settled(): Promise<void> {
    return this.tail.then(() => undefined);
  }

  /** True when nothing is queued or running. */
  get idle(): boolean {
    return this.queued === 0;
  }
}

/** One SerialQueue per key (say, per repository); a key's queue is forgotten once it is idle. */
export class KeyedSerialQueue<K> {
  private readonly queues = new Map<K, SerialQueue>();

  /** Runs `fn` after everything queued before it under the same `key`; other keys do not wait. */
  run<T>(key: K, fn: () => T | PromiseLike<T>): Promise<T> {
    let queue = this.queues.get(key);
    if (!queue) {
      queue = new SerialQueue();
      this.queues.set(key, queue);
    }
    const result = queue.run(fn);
    const forget = () => {
      if (queue.idle && this.queues.get(key) === queue) this.queues.delete(key);
    };
    void result.then(forget, forget);
    return result;
  }

  /** How many keys have work queued or running. */
  get size(): number {
    return this.queues.size;
  }
}
