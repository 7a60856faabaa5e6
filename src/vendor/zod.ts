/**
 * The one zod every module imports. `npm run build` replaces dist/vendor/zod.js with a
 * single-file bundle of zod (scripts/bundle-zod.mjs): Node loads zod's ~90 ES modules one by
 * one in ~65 ms here, one file in ~30. Import zod only through this file (eslint enforces
 * it): schemas built by two copies of zod must never meet. Tests run this file as it is,
 * on zod from node_modules.
 */
export { z } from 'zod'
