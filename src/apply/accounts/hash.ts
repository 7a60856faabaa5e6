/**
 * A crypt(3) hash as /etc/shadow holds it: `$id$…` (yescrypt `$y$`, SHA-512 `$6$`, bcrypt
 * `$2b$`…) from crypt's alphabet, optionally locked with leading `!`; or `!`/`*` alone (no
 * password can log in). Anything else is refused: a plaintext password written here would be
 * stored as is and never match, and a ":" or line break would split shadow's line, or
 * chpasswd's input, into another account's entry.
 */
const CRYPT_HASH = /^!*(?:\*|\$[A-Za-z0-9]{1,8}\$[A-Za-z0-9./$=,+-]{1,500})?$/

/** Whether `value` may go in /etc/shadow as a password hash. The empty string (no password at all) may not. Pure. */
export function isCryptHash (value: string): boolean {
  return value !== '' && CRYPT_HASH.test(value)
}
