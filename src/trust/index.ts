export { TrustStore, scopeMatches } from './trust.js'
export { grantExcesses, pathWithin, describeLimit, type Excess } from './grant.js'
export * from './errors.js'
