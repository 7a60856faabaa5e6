// After tsc and bundle-zod: builds the V8 startup snapshot that bin/grapevine runs `apply`,
// `plan` and `validate` from (see src/cli/snapshot.ts).
//
//   dist/snapshot/grapevine.cjs    the snapshot's code: dist/cli/snapshot.js and all it loads, one CommonJS file
//   dist/snapshot/grapevine.blob   the heap after running it, for `node --snapshot-blob`
//   dist/snapshot/node.stamp       size and mtime of the node binary that built it
//
// A blob works only with the node binary that built it, and with no V8 flags added (a
// mismatch aborts node), so bin/grapevine compares the stamp with the node it would run and
// otherwise takes bin/grapevine.js. Set GRAPEVINE_SKIP_SNAPSHOT=1 to build without one.
import { execFileSync } from 'node:child_process'
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, relative, resolve } from 'node:path'
import process from 'node:process'
import { URL, fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { bundledRequires } from './bundle-source.mjs'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))
const outDir = resolve(dist, 'snapshot')
const bundle = resolve(outDir, 'grapevine.cjs')
const blob = resolve(outDir, 'grapevine.blob')
const stamp = resolve(outDir, 'node.stamp')

// Commands whose code the snapshot holds (SNAPSHOT_COMMANDS in src/cli/snapshot.ts). Other
// commands' lazy imports stay out of the bundle: a snapshot cannot import() them anyway.
const SERVED = new Set(['apply.js', 'validate.js'])
const commandsDir = resolve(dist, 'cli', 'commands')

/**
 * `import.meta.url` becomes the module's URL under the dist/ that the running blob sits in,
 * found at run time from `--snapshot-blob` (at build time, from this bundle's own path).
 * `createRequire(import.meta.url)(x)` becomes `require(x)`, so that esbuild bundles x.
 */
const snapshotFriendly = {
  name: 'snapshot-friendly',
  setup (b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === 'dynamic-import' && args.importer.startsWith(commandsDir) && !SERVED.has(basename(args.importer))) {
        return { path: args.path, external: true }
      }
      return undefined
    })
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (!args.path.startsWith(dist)) return undefined
      const source = await readFile(args.path, 'utf8')
      const contents = bundledRequires(source)
        .replaceAll('import.meta.url', `__gvModuleUrl(${JSON.stringify(relative(dist, args.path))})`)
      return { contents, resolveDir: dirname(args.path) }
    })
  }
}

const banner = `var __gvModuleUrl = (rel) => {
  const i = process.execArgv.findIndex((a) => a === '--snapshot-blob' || a.startsWith('--snapshot-blob='));
  const blob = i < 0 ? __filename : process.execArgv[i].includes('=') ? process.execArgv[i].slice(16) : process.execArgv[i + 1];
  return require('node:url').pathToFileURL(require('node:path').resolve(require('node:path').dirname(blob), '..', rel)).href;
};`

async function main () {
  if (process.env.GRAPEVINE_SKIP_SNAPSHOT === '1') {
    await rm(outDir, { recursive: true, force: true })
    return
  }
  await build({
    entryPoints: [resolve(dist, 'cli', 'snapshot.js')],
    outfile: bundle,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    banner: { js: banner },
    plugins: [snapshotFriendly],
    logLevel: 'warning'
  })
  // Written beside, then renamed: a torn blob crashes node rather than failing cleanly.
  const temp = `${blob}.tmp-${process.pid}`
  try {
    // --no-warnings: Node warns that some built-in modules (child_process) are "not yet fully
    // verified" in snapshots; test/cli/snapshot.spec.ts runs the commands through it.
    // NODE_OPTIONS cleared: V8 flags in it would be baked into the blob, and bin/grapevine runs
    // the blob only without NODE_OPTIONS, where node would then refuse it (exit 14).
    execFileSync(process.execPath, ['--no-warnings', '--snapshot-blob', temp, '--build-snapshot', bundle], { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } })
    await rename(temp, blob)
  } finally {
    await rm(temp, { force: true })
  }
  const node = await stat(process.execPath)
  await writeFile(stamp, `${node.size} ${Math.floor(node.mtimeMs / 1000)}\n`)
}

await main()
