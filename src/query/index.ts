/**
 * `/grapevine/query/1.0.0`: what an admin command joining through --bootstrap asks an agent
 * for: its fleet view (`fleet`) or an archived envelope (`envelope`, for rollback).
 */
export * from './constants.js'
export * from './errors.js'
export { serveQueries, queryFleet, queryEnvelope, fleetPage, fleetFrames, type QueryHandlers } from './protocol.js'
