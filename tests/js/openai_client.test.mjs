// The official OpenAI Node client (npm `openai`) against the real `kvcache serve` binary:
// models.list, completions and chat completions, streamed and not (the streamed chunks
// concatenate to the non-streamed greedy text), usage, a second chat turn served partly from
// the prefix cache (usage.prompt_tokens_details.cached_tokens > 0), and errors surfacing as the
// client's APIError subclasses with the right status. The server is stopped with SIGTERM and
// must exit 0. Uses stories260K from ../shared when present (real text: the greedy completion of
// "Once upon a time" must match llama2.c's reference output), else a synthetic model.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { requirePackage, sharedDir, startServer, storiesModel, synthModel } from './lib/kvcache_server.mjs';

const { default: OpenAI } = await requirePackage('openai');

const stories = storiesModel();
const modelFile = stories ?? synthModel('tiny');
const modelId = path.basename(modelFile).replace(/\.[^.]*$/, '');
const reference = stories
  ? readFileSync(path.join(sharedDir, 'models', 'stories260K.once-upon-a-time.txt'), 'utf8')
  : null;

let server;
let client;

before(async () => {
  server = await startServer(modelFile, ['--parallel', '4', '-t', '2']);
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'none', maxRetries: 0, timeout: 120_000 });
});

after(async () => {
  // SIGTERM: the server must stop cleanly (exit 0); stop() throws otherwise.
  if (server) await server.stop();
});

// Every error must be the client's typed subclass with the server's status and error object.
async function expectApiError(promise, cls, status, check = () => {}) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `not an APIError: ${e}`);
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, status);
    check(e);
    return e;
  }
  assert.fail(`expected ${cls.name} (${status})`);
}

test('models.list names the served model', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  assert.deepEqual(ids, [modelId]);
  assert.equal(page.data[0].object, 'model');
});

test('completion, streamed and not: same greedy text; usage', async () => {
  const params = { model: modelId, prompt: 'Once upon a time', max_tokens: 40, temperature: 0 };
  const r = await client.completions.create(params);
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.model, modelId);
  const text = r.choices[0].text;
  const finish = r.choices[0].finish_reason;
  assert.ok(text.length > 0);
  assert.ok(['length', 'stop'].includes(finish));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 40);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  if (reference) {
    // stories260K: BOS + 4 prompt tokens, then llama2.c's greedy continuation.
    assert.equal(r.usage.prompt_tokens, 5);
    assert.equal(finish, 'length');
    assert.ok(reference.startsWith('Once upon a time' + text),
              `greedy text differs from the reference:\n${JSON.stringify(text)}`);
    assert.ok(text.startsWith(', there was a little girl named Lily.'));
  }

  const stream = await client.completions.create({ ...params, stream: true,
                                                    stream_options: { include_usage: true } });
  let streamed = '';
  let streamedFinish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    ++chunks;
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices?.length) continue;
    streamed += chunk.choices[0].text;
    if (chunk.choices[0].finish_reason) streamedFinish = chunk.choices[0].finish_reason;
  }
  assert.ok(chunks > 2, `only ${chunks} chunks`);
  assert.equal(streamed, text);
  assert.equal(streamedFinish, finish);
  assert.ok(usage, 'no usage chunk');
  assert.equal(usage.completion_tokens, r.usage.completion_tokens);
  assert.equal(usage.prompt_tokens, r.usage.prompt_tokens);
});

const system = 'You are a storyteller who tells short and happy stories about animals, children and their friends in the park.';
const firstTurn = [
  { role: 'system', content: system },
  { role: 'user', content: 'Tell me a story about a little dog.' },
];

test('chat completion, streamed and not; the second turn is served from the prefix cache', async () => {
  const r = await client.chat.completions.create({ model: modelId, messages: firstTurn, max_tokens: 24,
                                                   temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  const message = r.choices[0].message;
  assert.equal(message.role, 'assistant');
  assert.equal(typeof message.content, 'string');
  assert.ok(message.content.length > 0);
  assert.ok(['length', 'stop'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 16, `prompt of ${r.usage.prompt_tokens} tokens`);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');

  const stream = await client.chat.completions.create({ model: modelId, messages: firstTurn, max_tokens: 24,
                                                        temperature: 0, stream: true,
                                                        stream_options: { include_usage: true } });
  let content = '';
  let role = null;
  let usage = null;
  let finish = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices?.length) continue;
    const delta = chunk.choices[0].delta;
    if (delta.role) role = delta.role;
    if (delta.content) content += delta.content;
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(role, 'assistant');
  assert.equal(content, message.content);
  assert.equal(finish, r.choices[0].finish_reason);
  assert.ok(usage, 'no usage chunk');
  assert.equal(usage.completion_tokens, r.usage.completion_tokens);

  // Turn 2: turn 1's messages, its answer and a new question. Its prompt starts with turn 1's,
  // whose full KV blocks are in the prefix cache.
  const second = await client.chat.completions.create({
    model: modelId,
    messages: [...firstTurn, { role: 'assistant', content: message.content },
               { role: 'user', content: 'What did the dog do next?' }],
    max_tokens: 16,
    temperature: 0,
  });
  const cached = second.usage.prompt_tokens_details.cached_tokens;
  assert.ok(second.usage.prompt_tokens > r.usage.prompt_tokens);
  assert.ok(cached >= 16, `second turn: ${cached} cached prompt tokens`);
  assert.ok(cached < second.usage.prompt_tokens);
});

test('errors are APIError subclasses with the right status', async () => {
  const bad = await expectApiError(
    client.completions.create({ model: modelId, prompt: 'a', max_tokens: 4, temperature: -1 }),
    OpenAI.BadRequestError, 400);
  assert.equal(bad.param, 'temperature');
  assert.equal(bad.type, 'invalid_request_error');
  await expectApiError(
    client.chat.completions.create({ model: modelId, messages: [{ role: 'pirate', content: 'arr' }] }),
    OpenAI.BadRequestError, 400, (e) => assert.equal(e.param, 'messages'));
  await expectApiError(
    client.completions.create({ model: modelId, prompt: 'a', max_tokens: 'ten' }),
    OpenAI.BadRequestError, 400, (e) => assert.equal(e.param, 'max_tokens'));

  const missing = await expectApiError(
    client.chat.completions.create({ model: 'gpt-9', messages: firstTurn, max_tokens: 4 }),
    OpenAI.NotFoundError, 404);
  assert.equal(missing.code, 'model_not_found');

  // Context overflow: prompt + max_tokens beyond the context, non-streamed and streamed (a
  // streamed request fails before the stream starts, so create() itself throws).
  const overflow = await expectApiError(
    client.completions.create({ model: modelId, prompt: 'Once upon a time', max_tokens: 100000 }),
    OpenAI.BadRequestError, 400);
  assert.equal(overflow.code, 'context_length_exceeded');
  await expectApiError(
    client.chat.completions.create({ model: modelId, stream: true, max_tokens: 8,
                                     messages: [{ role: 'user', content: 'story '.repeat(3000) }] }),
    OpenAI.BadRequestError, 400, (e) => assert.equal(e.code, 'context_length_exceeded'));

  // Still serving after the errors.
  const ok = await client.completions.create({ model: modelId, prompt: 'The cat', max_tokens: 4, temperature: 0 });
  assert.ok(ok.choices[0].text.length > 0);
});
