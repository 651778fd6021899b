'use strict';
/**
 * @wxbridge/node — the node layer a merchant backend runs in front of its own API.
 *
 *   const { createBridge, middleware, koa } = require('@wxbridge/node');
 *
 * See README.md. Contract: the bridge's API.md, "Translation and look-up" and "Tenants (v1.1)".
 */

const { createBridge, BridgeError, isUnavailable } = require('./lib/bridge.js');
const { middleware, koa } = require('./lib/middleware.js');

module.exports = { createBridge, middleware, koa, BridgeError, isUnavailable };
