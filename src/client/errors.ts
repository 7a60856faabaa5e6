/** The mesh could not be reached, refused the envelope, or holds a newer version: the message says which. */
export class PublishError extends Error {
  static override name = 'PublishError'
  override name = 'PublishError'
}
