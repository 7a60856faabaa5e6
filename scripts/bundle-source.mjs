// Source rewrites shared by the scripts that bundle the CLI into one CommonJS file
// (build-snapshot.mjs, build-sea.mjs).

/**
 * `createRequire(import.meta.url)(x)` becomes `require(x)`, so that esbuild bundles x: the
 * modules load yaml and js-yaml that way, lazily, and a bundle must hold them.
 */
export function bundledRequires (source) {
  return source.replaceAll('createRequire(import.meta.url)(', 'require(')
}
