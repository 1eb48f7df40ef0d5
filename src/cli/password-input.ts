// Reading a password without it showing up anywhere: from a terminal with echo off, or from a pipe.
import { CliError } from './command.ts'

/** All of a piped stdin, less the one newline that `echo` or a here-string adds. */
export async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of input) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}

// What arrow, function and Alt-modified keys send (CSI, SS3, ESC + key): not part of a password.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal control sequences is the point.
const ESCAPE_SEQUENCES = /\u001b(?:\[[0-?]*[ -/]*[@-~]|O.|.)?/gs

/**
 * Asks on a terminal without echoing what is typed. Raw mode turns off echo, and with it the line editing
 * and signals the terminal would otherwise handle, so backspace, Ctrl-U and Ctrl-C are handled here.
 */
export function promptHidden(
  question: string,
  input: NodeJS.ReadStream,
  output: NodeJS.WritableStream,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const typed: string[] = []
    const finish = (error?: CliError) => {
      input.off('data', onData)
      input.setRawMode(false)
      input.pause()
      output.write('\n')
      if (error) reject(error)
      else resolve(typed.join(''))
    }
    const onData = (chunk: string) => {
      for (const char of chunk.replace(ESCAPE_SEQUENCES, '')) {
        if (char === '\r' || char === '\n') return finish()
        // Ctrl-C; Ctrl-D on an empty line. 130 is what a shell reports for a command ended by Ctrl-C.
        if (char === '\u0003' || (char === '\u0004' && typed.length === 0))
          return finish(new CliError('Cancelled', 130))
        if (char === '\u007f' || char === '\b') typed.pop()
        else if (char === '\u0015') typed.length = 0
        else if (char >= ' ') typed.push(char)
      }
    }
    // Echo goes off before the question shows, so that nothing typed after it can be echoed.
    input.setRawMode(true)
    input.setEncoding('utf8')
    input.on('data', onData)
    input.resume()
    output.write(question)
  })
}
