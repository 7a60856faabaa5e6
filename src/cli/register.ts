import type { Command } from '@commander-js/extra-typings'

/** Every command registers itself on the program; each action returns its exit code. */
export type Register = (program: Command, done: (code: number) => void) => void
