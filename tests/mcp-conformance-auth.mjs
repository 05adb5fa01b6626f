// mcp-conformance-auth.mjs: preloaded into the MCP conformance suite
// (node --import) so that its requests to our /mcp carry the operator
// token. The suite has no option for a bearer token (0.1.16: no --header,
// no auth environment variable), and /mcp never runs without auth.
//
// It installs undici's global dispatcher with an interceptor that adds
// "Authorization: Bearer $MCP_TOKEN" to requests for $MCP_URL's origin
// that carry none. Node's fetch (which the SDK client in the suite uses)
// and undici's request() (the DNS-rebinding scenario) both go through it;
// Host and Origin are left exactly as the suite sets them.
//
// Copyright 2026 The Codex Pooler authors
// SPDX-License-Identifier: GPL-3.0-or-later

import path from 'node:path';
import { pathToFileURL } from 'node:url';

const undici = await import(pathToFileURL(
  path.join(process.env.POOLER_NPM_DIR, 'node_modules/undici/index.js')));
const target = new URL(process.env.MCP_URL).origin;
const value = `Bearer ${process.env.MCP_TOKEN}`;

function withAuth(headers) {
  if (headers == null) return { authorization: value };
  if (Array.isArray(headers)) {
    const pairs = headers.length > 0 && Array.isArray(headers[0]);
    const names = pairs ? headers.map((h) => h[0]) : headers.filter((_, i) => i % 2 === 0);
    if (names.some((n) => String(n).toLowerCase() === 'authorization')) return headers;
    return pairs ? [...headers, ['authorization', value]] : [...headers, 'authorization', value];
  }
  if (typeof headers[Symbol.iterator] === 'function' && typeof headers !== 'string') {
    return withAuth([...headers]);
  }
  if (Object.keys(headers).some((n) => n.toLowerCase() === 'authorization')) return headers;
  return { ...headers, authorization: value };
}

const agent = new undici.Agent().compose((dispatch) => (opts, handler) => {
  const origin = typeof opts.origin === 'string' ? opts.origin : opts.origin?.toString();
  if (origin && new URL(origin).origin === target) {
    opts = { ...opts, headers: withAuth(opts.headers) };
  }
  return dispatch(opts, handler);
});
undici.setGlobalDispatcher(agent);
