// Vitest setup: load the Promise.withResolvers polyfill before any test imports libp2p.
import '../../src/polyfill.js';
