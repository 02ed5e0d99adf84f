/**
 * A screen's rows as text to print: the blank rows under the last drawn one
 * are the screen's size, not its content.
 */
export function screenText(lines: readonly string[]): string {
  let end = lines.length;
  while (end > 0 && lines[end - 1] === "") end--;
  return lines.slice(0, end).join("\n");
}
