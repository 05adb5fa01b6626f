// e2e-sdk.mjs: the real openai npm SDK (6.49.0) against codex-pooler's /v1
// surface. Run by e2e-sdk.sh, which starts the fake upstream and the
// gateway. Prints one line per check, "PASS desc" or "FAIL desc :: why";
// the shell script turns them into TAP.
//
// Environment: POOLER_NPM_DIR, SERVE_URL, FAKE_URL, POOL_KEY, MARKER.
//
// SPDX-License-Identifier: GPL-3.0-or-later
import { pathToFileURL } from "node:url";

const { default: OpenAI, NotFoundError, RateLimitError } = await import(
  pathToFileURL(`${process.env.POOLER_NPM_DIR}/node_modules/openai/index.mjs`).href);

const marker = process.env.MARKER;
const client = new OpenAI({
  baseURL: `${process.env.SERVE_URL}/v1`,
  apiKey: process.env.POOL_KEY,
  maxRetries: 0,
  timeout: 30000,
});
const ctl = async (query) => {
  const r = await fetch(`${process.env.FAKE_URL}/__ctl?${query}`);
  if (!r.ok) throw new Error(`__ctl ${query}: ${r.status}`);
};

function check(desc, ok, why = "") {
  console.log(ok ? `PASS ${desc}` : `FAIL ${desc} :: ${why}`);
}

async function step(desc, fn) {
  try {
    await fn();
  } catch (e) {
    check(desc, false, `${e?.constructor?.name}: ${e?.status ?? ""} ${e?.message}`);
  }
}

await ctl(`text=${marker}`);

await step("models.list", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  check("models.list returns the Pool's models", ids.includes("gpt-5.5"), JSON.stringify(ids));
});

await step("responses.create", async () => {
  const r = await client.responses.create({ model: "gpt-5.5", input: "say hello",
                                            max_output_tokens: 50, temperature: 0.2 });
  check("responses.create: status completed", r.status === "completed", r.status);
  check("responses.create: output_text came through the Pool", r.output_text === marker, r.output_text);
  check("responses.create: usage", r.usage?.total_tokens === 43, JSON.stringify(r.usage));
});

await step("responses.create stream", async () => {
  const stream = await client.responses.create({ model: "gpt-5.5", input: "say hello", stream: true });
  const types = [];
  let text = "";
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === "response.output_text.delta") text += ev.delta;
  }
  check("responses.create stream: events from created to completed",
        types[0] === "response.created" && types.at(-1) === "response.completed", types.join(","));
  check("responses.create stream: text deltas", text === marker, text);
});

// What the backend adds that the Responses API has not (a codex.rate_limits
// event, an empty output in response.completed): the SDK's stream helper
// throws on the first and builds its final response from the second.
await ctl("mode=codex_extras");
await step("responses.stream finalResponse", async () => {
  const stream = client.responses.stream({ model: "gpt-5.5", input: "say hello" });
  const types = [];
  stream.on("event", (ev) => types.push(ev.type));
  const r = await stream.finalResponse();
  check("responses.stream: no codex.* event reaches the client",
        !types.some((t) => t.startsWith("codex.")), types.join(","));
  check("responses.stream: finalResponse has the text of an empty-output completed event",
        r.output_text === marker && r.output?.length === 1, JSON.stringify(r.output));
});
await ctl("mode=ok");

// Every account's stream fails at its first event: nothing went out, so
// stream clients get an HTTP error with the failure's status, as the API
// answers (the SDK retries by status), not a 200 stream.
for (const [mode, low, high, what] of [["failed", 500, 599, "an HTTP 5xx"],
                                        ["failed_request", 400, 400, "an HTTP 400 (the request's fault)"]]) {
  await ctl(`mode=${mode}`);
  await step(`failed first event (${mode}), streamed`, async () => {
    for (const [kind, call] of [
      ["responses", () => client.responses.create({ model: "gpt-5.5", input: "say hello", stream: true })],
      ["chat", () => client.chat.completions.create({ model: "gpt-5.5", stream: true,
                                                      messages: [{ role: "user", content: "say hello" }] })],
    ]) {
      try {
        const stream = await call();
        for await (const ev of stream) { /* drain */ }
        check(`${kind} stream whose first event failed (${mode}): ${what}`, false, "no error");
      } catch (e) {
        check(`${kind} stream whose first event failed (${mode}): ${what}`, e?.status >= low && e?.status <= high,
              `${e?.constructor?.name} ${e?.status} ${e?.message}`);
      }
    }
  });
}
await ctl("mode=ok");

await step("chat.completions.create", async () => {
  const r = await client.chat.completions.create({
    model: "gpt-5.5", max_tokens: 50,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "say hello" }],
  });
  check("chat.completions.create: content", r.choices[0].message.content === marker,
        JSON.stringify(r.choices[0]));
  check("chat.completions.create: finish_reason stop", r.choices[0].finish_reason === "stop",
        r.choices[0].finish_reason);
  check("chat.completions.create: usage", r.usage?.prompt_tokens === 42 && r.usage?.completion_tokens === 1,
        JSON.stringify(r.usage));
});

await step("chat.completions.create stream", async () => {
  const s = await client.chat.completions.create({
    model: "gpt-5.5", messages: [{ role: "user", content: "say hello" }],
    stream: true, stream_options: { include_usage: true },
  });
  let text = "", usage = null, finish = null, role = null;
  for await (const c of s) {
    const choice = c.choices[0];
    if (choice?.delta?.role) role = choice.delta.role;
    if (choice?.delta?.content) text += choice.delta.content;
    if (choice?.finish_reason) finish = choice.finish_reason;
    if (c.usage) usage = c.usage;
  }
  check("chat.completions.create stream: role then text", role === "assistant" && text === marker,
        `${role} ${text}`);
  check("chat.completions.create stream: finish_reason stop", finish === "stop", finish);
  check("chat.completions.create stream: usage chunk", usage?.total_tokens === 43, JSON.stringify(usage));
});

// The tool call round trip: tools, the assistant's call and the tool's
// result go upstream as Responses items (test-v1 reads them there); here
// the SDK's request must be accepted and answered.
await step("tool round trip", async () => {
  const tools = [{ type: "function", function: { name: "get_weather", description: "Weather for a city",
                   parameters: { type: "object", properties: { city: { type: "string" } },
                                 required: ["city"] } } }];
  const r = await client.chat.completions.create({
    model: "gpt-5.5", tools, tool_choice: "auto",
    messages: [
      { role: "user", content: "weather in Paris?" },
      { role: "assistant", content: null, tool_calls: [{ id: "call_e2e_1", type: "function",
        function: { name: "get_weather", arguments: JSON.stringify({ city: "Paris" }) } }] },
      { role: "tool", tool_call_id: "call_e2e_1", content: "sunny, 21C" },
    ],
  });
  check("chat tool round trip: the tool result is accepted and answered",
        r.choices[0].message.content === marker, JSON.stringify(r.choices[0]));
});

await step("unsupported endpoint", async () => {
  try {
    await client.embeddings.create({ model: "text-embedding-3-small", input: "x" });
    check("embeddings.create: NotFoundError", false, "no error");
  } catch (e) {
    check("embeddings.create: NotFoundError 404", e instanceof NotFoundError && e.status === 404,
          `${e?.constructor?.name} ${e?.status}`);
    check("embeddings.create: code unsupported_endpoint", e.code === "unsupported_endpoint", e.code);
  }
});

await step("invalid request", async () => {
  try {
    await client.responses.create({ model: "gpt-5.5" });
    check("responses.create without input: 400", false, "no error");
  } catch (e) {
    check("responses.create without input: 400 naming param input", e.status === 400 && e.param === "input",
          `${e?.status} ${e?.param}`);
  }
});

await ctl("mode=429at");
await step("rate limit", async () => {
  for (const which of ["upstream", "pool"]) {
    try {
      await client.responses.create({ model: "gpt-5.5", input: "say hello" });
      check(`429 (${which}): RateLimitError`, false, "no error");
    } catch (e) {
      check(`429 (${which}): RateLimitError`, e instanceof RateLimitError && e.status === 429,
            `${e?.constructor?.name} ${e?.status}`);
      check(`429 (${which}): the message names the reset time`,
            /try again at \d{4}-\d\d-\d\d \d\d:\d\d UTC/i.test(e.message), e.message);
    }
  }
});
await ctl("mode=ok");
