/**
 * The one zod every module imports. `npm run build` replaces dist/vendor/zod.js with a
 * single-file bundle of zod (scripts/bundle-zod.mjs): Node loads zod's own 95 ES modules
 * (64 of them translations of its messages) in 65-85 ms on the benchmark machine, the
 * bundle, English only, in 20-28 ms. Import zod only through this file (eslint enforces it):
 * schemas built by two copies of zod must never meet. Tests run this file as it is, on zod
 * from node_modules.
 */
export { z } from 'zod'
