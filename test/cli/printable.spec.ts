// What a peer sends (node names, receipt errors, refused envelopes' names) reaches the
// operator's terminal through print: control sequences in it are shown, not obeyed.
import { describe, expect, it } from 'vitest'
import pc from 'picocolors'
import { printable } from '../../src/cli/output.js'

describe('printable', () => {
  const colours = pc.createColors(true)

  it.each([
    ['clear the screen', 'web-1\u001b[2J', 'web-1\\u001b[2J'],
    ['move the cursor up over a failure', 'ok\u001b[1A\u001b[2K', 'ok\\u001b[1A\\u001b[2K'],
    ['set the window title (OSC)', '\u001b]0;owned\u0007', '\\u001b]0;owned\\u0007'],
    ['write the clipboard (OSC 52)', '\u001b]52;c;ZWNobw==\u0007', '\\u001b]52;c;ZWNobw==\\u0007'],
    ['hide text (SGR 8)', '\u001b[8mfailed', '\\u001b[8mfailed'],
    ['a C1 control', 'a\u009bb', 'a\\u009bb'],
    ['a carriage return that overwrites the line', 'failed\rapplied', 'failed\\u000dapplied']
  ])('escapes a sequence meant to %s', (_, input, shown) => {
    expect(printable(input)).toBe(shown)
  })

  it('keeps this CLI\'s own colours, newlines and tabs', () => {
    const line = `${colours.red('failed')} ${colours.bold(colours.green('ok'))}\t${colours.yellow('x')} ${colours.dim(colours.cyan('y'))}\nnext`
    expect(printable(line)).toBe(line)
  })
})
