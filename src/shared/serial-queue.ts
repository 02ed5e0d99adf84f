/**
 * Runs tasks one at a time, in the order given: each starts once every task
 * queued before it has settled, whatever its outcome. A failed task fails
 * only its own caller.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.tail.then(task, task);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
