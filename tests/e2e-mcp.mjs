// e2e-mcp.mjs: the official MCP TypeScript SDK client (v1, pinned in
// build-aux/deps.sh) against a running `codex-pooler serve`.
//
// Environment: POOLER_NPM_DIR, MCP_URL (http://127.0.0.1:PORT/mcp),
// MCP_TOKEN (an operator token), POOL_KEY (a Pool key, must be refused),
// SECRETS (newline-separated strings that must never appear in answers),
// EMAILS (newline-separated unmasked addresses that must never appear).
// Prints "# ok - ..." / "# not ok - ..." lines; exits 1 on any failure.
//
// Copyright 2026 The Codex Pooler authors
// SPDX-License-Identifier: GPL-3.0-or-later

import path from 'node:path';
import { pathToFileURL } from 'node:url';

const sdk = path.join(process.env.POOLER_NPM_DIR, 'node_modules/@modelcontextprotocol/sdk/dist/esm');
const { Client } = await import(pathToFileURL(path.join(sdk, 'client/index.js')));
const { StreamableHTTPClientTransport } =
  await import(pathToFileURL(path.join(sdk, 'client/streamableHttp.js')));

const url = new URL(process.env.MCP_URL);
const token = process.env.MCP_TOKEN;
const secrets = (process.env.SECRETS || '').split('\n').filter(Boolean);
const emails = (process.env.EMAILS || '').split('\n').filter(Boolean);
let failures = 0;

function check(ok, what, detail) {
  console.log(`# ${ok ? 'ok' : 'not ok'} - ${what}`);
  if (!ok) {
    failures++;
    if (detail !== undefined) console.log(`#   ${String(detail).split('\n').join('\n#   ')}`);
  }
}

function clean(what, value) {
  const text = JSON.stringify(value);
  for (const secret of secrets) check(!text.includes(secret), `${what}: no secret in the answer`);
  for (const email of emails) check(!text.includes(email), `${what}: no unmasked e-mail`);
}

async function connect(headers) {
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
  const client = new Client({ name: 'codex-pooler-e2e', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

async function refused(headers, expected, what) {
  try {
    const { client } = await connect(headers);
    await client.close();
    check(false, what, 'connect() succeeded');
  } catch (error) {
    // StreamableHTTPError carries the HTTP status as its code.
    check(error?.code === expected, `${what} (${expected})`, `${error?.code} ${error}`);
  }
}

try {
  const { client, transport } = await connect({ Authorization: `Bearer ${token}` });
  check(true, 'connect with the operator token');
  check(client.getServerVersion()?.name === 'codex-pooler', 'serverInfo.name is codex-pooler',
        JSON.stringify(client.getServerVersion()));
  check(transport.protocolVersion === '2025-11-25', 'negotiated 2025-11-25', transport.protocolVersion);
  check(transport.sessionId === undefined, 'stateless: no session id');
  await client.ping();
  check(true, 'ping');

  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  check(names.length === 10, 'ten tools', names.join(' '));
  for (const tool of tools) {
    check(tool.annotations?.readOnlyHint === true && tool.outputSchema?.type === 'object' &&
          tool.inputSchema?.type === 'object', `${tool.name} is read-only with both schemas`);
  }

  const pools = await client.callTool({ name: 'list_pools', arguments: {} });
  const pool = pools.structuredContent.pools[0]?.slug;
  check(pool === 'main', 'list_pools shows main', JSON.stringify(pools.structuredContent));
  const accounts = await client.callTool({ name: 'list_accounts', arguments: {} });
  const account = accounts.structuredContent.accounts[0];
  check(account?.email?.includes('***@'), 'list_accounts masks e-mail', account?.email);
  const requests = await client.callTool({ name: 'list_requests', arguments: { limit: 100 } });
  const total = requests.structuredContent.requests.length;
  check(total >= 3, 'list_requests has the gateway traffic', total);
  const first = requests.structuredContent.requests[0];

  // Every tool, with arguments where it needs them; the SDK validates
  // structuredContent against outputSchema and throws when it does not fit.
  const calls = {
    get_status: {},
    list_pools: {},
    get_pool: { pool },
    list_accounts: { pool },
    get_account: { account: account.id },
    list_keys: {},
    list_requests: { pool, limit: 5 },
    get_request: { id: first.id },
    list_audit_events: { limit: 5 },
    explain_routing: { pool, model: 'gpt-5.5' },
  };
  for (const name of names) {
    try {
      const result = await client.callTool({ name, arguments: calls[name] ?? {} });
      const text = result.content?.[0]?.text;
      check(result.isError === false && typeof result.structuredContent === 'object' &&
            JSON.stringify(JSON.parse(text)) === JSON.stringify(result.structuredContent),
            `callTool ${name}: structuredContent and the same JSON as text`);
      clean(name, result);
    } catch (error) {
      check(false, `callTool ${name}`, String(error));
    }
  }

  const explained = await client.callTool({ name: 'explain_routing', arguments: { pool } });
  check(explained.structuredContent.candidates.length + explained.structuredContent.excluded.length >= 1,
        'explain_routing accounts for every member', JSON.stringify(explained.structuredContent));

  // Page through the whole log two rows at a time.
  const seen = [];
  let cursor;
  let pages = 0;
  do {
    const page = await client.callTool({ name: 'list_requests',
                                         arguments: cursor ? { limit: 2, cursor } : { limit: 2 } });
    seen.push(...page.structuredContent.requests.map((r) => r.id));
    cursor = page.structuredContent.next_cursor ?? undefined;
    pages++;
  } while (cursor && pages < 100);
  check(pages >= 2 && seen.length === total && new Set(seen).size === total,
        `list_requests pages (${pages} pages, ${seen.length} rows)`);

  // An argument the tool refuses is a tool result the model reads, not a
  // protocol error (SEP-1303, MCP 2025-11-25).
  try {
    const refused = await client.callTool({ name: 'list_requests', arguments: { limit: 1000 } });
    check(refused.isError === true && /limit/.test(refused.content?.[0]?.text ?? ''),
          'limit 1000 is refused as a tool error (isError, names limit)', JSON.stringify(refused));
  } catch (error) {
    check(false, 'limit 1000 is refused as a tool error (isError, names limit)', String(error));
  }
  try {
    await client.callTool({ name: 'no_such_tool', arguments: {} });
    check(false, 'an unknown tool is refused');
  } catch (error) {
    check(/-32602/.test(String(error)), 'an unknown tool is -32602', String(error));
  }

  const { resources } = await client.listResources();
  check(resources.some((r) => r.uri === 'pooler://status') && resources.some((r) => r.uri === 'pooler://pools'),
        'listResources has pooler://status and pooler://pools');
  for (const resource of resources) {
    const read = await client.readResource({ uri: resource.uri });
    check(read.contents[0]?.mimeType === 'application/json' && JSON.parse(read.contents[0].text),
          `readResource ${resource.uri}`);
    clean(resource.uri, read);
  }
  try {
    await client.readResource({ uri: 'pooler://nope' });
    check(false, 'an unknown resource is refused');
  } catch (error) {
    check(/-32002/.test(String(error)), 'an unknown resource is -32002', String(error));
  }

  await transport.terminateSession();
  await client.close();
} catch (error) {
  check(false, 'the SDK session', error?.stack ?? String(error));
}

await refused({ Authorization: `Bearer ${process.env.POOL_KEY}` }, 401, 'a Pool key is refused');
await refused({}, 401, 'no token is refused');
await refused({ Authorization: `Bearer ${token}`, Origin: 'http://evil.example.com' }, 403,
              'a foreign Origin is refused');

process.exit(failures === 0 ? 0 : 1);
