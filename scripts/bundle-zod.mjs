// After tsc: replaces dist/vendor/zod.js (a re-export of zod) with one file holding all of
// zod, which Node loads in about a third of the time of zod's own modules. See src/vendor/zod.ts.
//
// Zod's 63 translations of its messages are left out (a third of the bundle's
// load time): Grapevine writes its messages in English. Asking the bundled zod for another
// locale throws, naming this file.
import { readFile, rm } from 'node:fs/promises'
import { URL, fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const out = fileURLToPath(new URL('../dist/vendor/zod.js', import.meta.url))
// zod's own entry for `import`, wherever npm put it.
const entry = fileURLToPath(import.meta.resolve('zod'))

/** zod/v4/locales/index.js with English kept and every other locale a function that throws. */
async function localesStub (path) {
  const source = await readFile(path, 'utf8')
  const names = [...source.matchAll(/export \{ default as (\w+) \} from "\.\/([\w-]+)\.js";/g)]
  if (names.length === 0) throw new Error(`${path}: no locales found; has zod changed its layout?`)
  return names.map(([, name, file]) => name === 'en'
    ? `export { default as en } from "./${file}.js";`
    : `export const ${name} = () => { throw new Error('zod locale "${name}" is not in the bundled zod (scripts/bundle-zod.mjs)') };`
  ).join('\n')
}

const englishOnly = {
  name: 'english-only',
  setup (b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, async (args) => ({ contents: await localesStub(args.path), resolveDir: args.path.replace(/[\\/]index\.js$/, '') }))
  }
}

const result = await build({
  entryPoints: [entry],
  outfile: out,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  plugins: [englishOnly],
  metafile: true,
  logLevel: 'warning'
})
// tsc's map is for the re-export this file no longer is.
await rm(`${out}.map`, { force: true })
const inputs = Object.keys(result.metafile.inputs).length
if (inputs < 20) throw new Error(`bundled only ${inputs} modules of zod; expected all of them`)
