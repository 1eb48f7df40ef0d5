// The README's generated tables (settings, event types) live between two HTML comments; these helpers write a
// table there, and the markdown cells of it. A test of each table compares the README with what it would write.
import { readFileSync, writeFileSync } from 'node:fs'

export const code = (text: string) => `\`${text}\``
/** A table cell: a `|` inside it would end the cell. */
export const cell = (text: string) => text.replaceAll('|', '\\|')

/** `text` with `content` between the lines `begin` and `end` (markers that must already be there). */
export function withSection(text: string, begin: string, end: string, content: string): string {
  const from = text.indexOf(begin)
  const to = text.indexOf(end)
  if (from < 0 || to < from) throw new Error(`README.md has no "${begin}" ... "${end}" markers`)
  return `${text.slice(0, from + begin.length)}\n${content}\n${text.slice(to)}`
}

/** Rewrites the README's section between `begin` and `end` (the `npm run docs:*` scripts). */
export function rewriteReadmeSection(begin: string, end: string, content: string): void {
  const path = new URL('../../README.md', import.meta.url)
  writeFileSync(path, withSection(readFileSync(path, 'utf8'), begin, end, content))
}
