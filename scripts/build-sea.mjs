// `npm run release`, after `npm run build`: builds dist/release/grapevine-linux-x64, a single
// executable (Node's SEA) that runs the CLI on a machine with no Node installed. It embeds the
// node binary that runs this script; `grapevine --version` names it.
//
//   dist/release/sea/grapevine.cjs   dist/cli/sea-entry.js and all it loads, one CommonJS file
//   dist/release/sea/sea.json        the SEA config; sea-prep.blob, the blob it builds
//   dist/release/grapevine-linux-x64 a copy of node with the blob injected (postject)
//
// `node scripts/build-sea.mjs OUT` writes the binary to OUT instead, and its work files beside
// it (tests build into a temp dir).
import { execFileSync } from 'node:child_process'
import { chmod, copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, relative, resolve } from 'node:path'
import process from 'node:process'
import { URL, fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { bundledRequires } from './bundle-source.mjs'

const root = fileURLToPath(new URL('../', import.meta.url))
const dist = resolve(root, 'dist')
const binary = resolve(process.argv[2] ?? resolve(dist, 'release', `grapevine-${process.platform}-${process.arch}`))
const work = resolve(dirname(binary), 'sea')
const bundle = resolve(work, 'grapevine.cjs')
const blob = resolve(work, 'sea-prep.blob')
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'

const pkg = JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8'))
const versionLine = `${pkg.version} (single binary, Node ${process.version})`

/**
 * A SEA main is one CommonJS script that can require only built-in modules, so everything is
 * bundled: `createRequire(import.meta.url)(x)` becomes `require(x)`, which esbuild follows, and
 * files the CLI reads beside its modules become what the binary holds instead.
 */
const seaFriendly = {
  name: 'sea-friendly',
  setup (b) {
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(dist)) return undefined
      const rel = relative(dist, args.path)
      let source = bundledRequires(await readFile(args.path, 'utf8'))
      if (rel === 'cli/main.js') {
        source = source.replace("readFileSync(new URL('../../package.json', import.meta.url), 'utf8')", JSON.stringify(JSON.stringify({ version: versionLine })))
      }
      if (rel === 'enroll/unit.js') {
        // The unit enroll installs is docs/grapevine.service, which the binary carries as text.
        const unit = await readFile(resolve(root, 'docs', 'grapevine.service'), 'utf8')
        const read = "readFileSync(new URL('../../docs/grapevine.service', import.meta.url), 'utf8')"
        if (!source.includes(read)) throw new Error(`${rel} no longer reads docs/grapevine.service as build-sea.mjs expects: update the replacement`)
        source = source.replace(read, JSON.stringify(unit))
      }
      if (rel === 'policy/load.js') {
        // The policy cache's build id: the binary itself, not a schema.js that it does not ship.
        source = source.replace(/new URL\(`\.\/schema\$\{extname\(fileURLToPath\(import\.meta\.url\)\)\}`, import\.meta\.url\)/, 'process.execPath')
      }
      source = source.replaceAll('import.meta.url', 'require("node:url").pathToFileURL(process.execPath).href')
      return { contents: source, resolveDir: dirname(args.path) }
    })
  }
}

async function main () {
  // Only this script's own files: dist/release/ holds the other release artifacts too.
  await rm(work, { recursive: true, force: true })
  await mkdir(work, { recursive: true })
  await build({
    entryPoints: [resolve(dist, 'cli', 'sea-entry.js')],
    outfile: bundle,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    // A SEA main built with a code cache cannot import() (node throws): built-in modules that
    // the CLI imports lazily become require()s.
    supported: { 'dynamic-import': false },
    plugins: [seaFriendly],
    logLevel: 'warning'
  })
  const config = resolve(work, 'sea.json')
  // The code cache halves start-up (--version 99 → 51 ms), as V8 need not compile the bundle.
  await writeFile(config, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }, null, 2))
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } })
  const temp = `${binary}.tmp-${process.pid}`
  await copyFile(process.execPath, temp)
  await chmod(temp, 0o755)
  const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js')
  // Quiet: postject warns about ELF note sections it cannot name, harmlessly; a failure still throws with its stderr.
  execFileSync(process.execPath, [postject, temp, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { stdio: 'pipe' })
  await rename(temp, binary)
  process.stdout.write(`${relative(process.cwd(), binary)}: grapevine ${versionLine}\n`)
}

await main()
