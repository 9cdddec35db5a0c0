#!/usr/bin/env node
// Generate images with the ImagePipeline SDXL text-to-image API (or ipmock) and save them.
//
//   node examples/js_client.mjs --base-url http://127.0.0.1:8000 \
//       --api-key test_pending-then-success --out images --prompt "a red fox in the snow"
//
// A careful client, written to be copied. It submits like the API docs do, polls the
// status endpoint until SUCCESS or FAILURE, downloads every image and prints the path of
// each one it saved. On the way it:
// - retries a status request or a download that meets a broken connection, a 5xx or a
//   429, after the answer's Retry-After or the poll interval, whichever is longer (a
//   status request never comes sooner than the poll interval), at most --max-retries
//   times in a row, and never past --timeout;
// - retries a submit only when the server refused it before making a job (429, 503);
//   never one whose answer was lost (a broken connection, another 5xx): the job may
//   exist, and a second submit could be charged twice. It says so and exits 3;
// - names the failing step (submit, status request N, download N) in every error.
// Exit status: 0 saved every image, 1 the API refused, the job failed or time ran out,
// 2 a wrong option, 3 the submit's answer was lost (the job may exist).
// Run with no options and IPMOCK_REQUEST set (as `ipmock fuzz -- node
// examples/js_client.mjs` does), it takes everything from the IPMOCK_* variables:
// IPMOCK_BASE_URL, IPMOCK_API_KEY, IPMOCK_REQUEST (the JSON body), IPMOCK_OUT (sample i
// saved as i.png), IPMOCK_POLL_FLOOR (the poll interval), IPMOCK_DEADLINE (the timeout).
// Node 18+ (global fetch); no npm packages. The default --base-url is the local mock
// (`ipmock serve`); the real API costs credits, so it is used only when named.

import { realpathSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const LOCAL_MOCK = "http://127.0.0.1:8000";
const SUBMIT_PATH = "/sdxl/text2image/v1";
const STATUS_PATH = "/sdxl/text2image/v1/status/";
// Statuses a status request or a download is tried again after (Retry-After).
const RETRIED = new Set([429, 500, 502, 503, 504]);
const LOST = "the job may exist, so it was not submitted again (a second submit could be charged twice)";

/** The run cannot go on; the message names the step and the server's own words. */
class ClientError extends Error {
  exitStatus = 1;
}

/** The submit's answer never arrived whole: the job may exist, so no second submit. */
class SubmitLost extends ClientError {
  exitStatus = 3;
}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/** What broke a connection, in words: fetch's "fetch failed" hides it in its cause. */
function brokenWhy(error) {
  const cause = error.cause ?? {};
  const code = cause.code ?? error.code ?? error.name;
  return `${code}: ${cause.message ?? error.message}`;
}

/** The answer's Retry-After in seconds, else fallback. */
function retryAfter(response, fallback) {
  const text = response?.headers.get("Retry-After") ?? "";
  return /^\d+$/.test(text) ? Number(text) : fallback;
}

/** One request and its whole body; a broken connection (even mid-body) throws. */
async function send(url, init) {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

function parseJson(answer, step) {
  let body;
  try {
    body = JSON.parse(answer.body.toString("utf8"));
  } catch {
    body = null;
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new ClientError(`${step}: HTTP ${answer.status}, the answer is not a JSON object`);
  }
  return body;
}

function refused(answer, step) {
  const body = parseJson(answer, step);
  return new ClientError(`${step}: ${body.error ?? "refused"} (HTTP ${answer.status})`);
}

class Client {
  constructor(baseUrl, apiKey, { pollInterval, timeout, retries }) {
    this.base = baseUrl.replace(/\/+$/, "");
    this.headers = { "API-Key": apiKey };
    Object.assign(this, { pollInterval, timeout, retries });
    this.deadline = Date.now() + timeout * 1000;
  }

  async wait(seconds, step, why) {
    if (Date.now() + seconds * 1000 > this.deadline) {
      throw new ClientError(`${step}: gave up after ${this.timeout} s (${why})`);
    }
    await sleep(seconds);
  }

  /** The submit's answer. Sent again only after a 429 or 503 (no job made then). */
  async submit(request) {
    // As in the docs: the body is JSON text, sent as bytes so that no Content-Type is added.
    const body = new TextEncoder().encode(JSON.stringify(request));
    for (let attempt = 0; ; attempt++) {
      let answer;
      try {
        answer = await send(this.base + SUBMIT_PATH, { method: "POST", headers: this.headers, body });
      } catch (error) {
        throw new SubmitLost(`submit: the answer was lost (${brokenWhy(error)}); ${LOST}`);
      }
      if ((answer.status === 429 || answer.status === 503) && attempt < this.retries) {
        await this.wait(retryAfter(answer, 1), "submit", `HTTP ${answer.status}, no job made`);
        continue;
      }
      if (answer.status >= 500) {
        throw new SubmitLost(`submit: HTTP ${answer.status} after the request was sent; ${LOST}`);
      }
      if (answer.status >= 400) throw refused(answer, "submit");
      try {
        return parseJson(answer, "submit");
      } catch (error) {
        throw new SubmitLost(`${error.message}; ${LOST}`);
      }
    }
  }

  /** A GET tried again after a broken connection, a 5xx or a 429, up to the retries. */
  async get(url, step, headers) {
    for (let attempt = 0; ; attempt++) {
      let answer = null;
      let why;
      try {
        answer = await send(url, { headers });
        if (!RETRIED.has(answer.status)) return answer;
        why = `HTTP ${answer.status}`;
      } catch (error) {
        why = brokenWhy(error);
      }
      if (attempt === this.retries) {
        throw new ClientError(`${step}: failed ${attempt + 1} times, last: ${why}`);
      }
      await this.wait(Math.max(retryAfter(answer, 0), this.pollInterval), step, why);
    }
  }

  /** Status requests until the job ends: its SUCCESS answer. */
  async poll(answer) {
    for (let polls = 1; answer.status === "PENDING"; polls++) {
      const step = `status request ${polls} of job ${answer.id}`;
      await this.wait(this.pollInterval, step, "still PENDING");
      const url = this.base + STATUS_PATH + encodeURIComponent(answer.id);
      const got = await this.get(url, step, this.headers);
      if (got.status !== 200) throw refused(got, step);
      answer = parseJson(got, step);
    }
    if (answer.status === "FAILURE") {
      throw new ClientError(`job failed: ${answer.error ?? "no message"}`);
    }
    if (answer.status !== "SUCCESS") throw new ClientError(`unknown status ${answer.status}`);
    return answer;
  }

  /** Each URL's bytes (Buffers), in order. The URLs need no API key: none is sent. */
  async images(urls) {
    const images = [];
    for (const [n, url] of urls.entries()) {
      const step = `download ${n + 1} of ${urls.length} (${url})`;
      const got = await this.get(url, step, {});
      if (got.status !== 200) throw new ClientError(`${step}: HTTP ${got.status}`);
      images.push(got.body);
    }
    return images;
  }

  /** Save each URL as PREFIX-N.png in outDir (N.png with an empty prefix). The URLs need
   * no API key: none is sent. */
  async download(urls, outDir, prefix) {
    await mkdir(outDir, { recursive: true });
    const paths = [];
    for (const [n, url] of urls.entries()) {
      const step = `download ${n + 1} of ${urls.length} (${url})`;
      const got = await this.get(url, step, {});
      if (got.status !== 200) throw new ClientError(`${step}: HTTP ${got.status}`);
      const path = join(outDir, prefix ? `${prefix}-${n}.png` : `${n}.png`);
      await writeFile(path, got.body);
      paths.push(path);
    }
    return paths;
  }
}

const USAGE = `usage: node js_client.mjs --api-key KEY --prompt TEXT [options]

Generate images with the ImagePipeline SDXL text-to-image API (or ipmock) and save them.

options:
  --base-url URL            the API (default ${LOCAL_MOCK}, \`ipmock serve\`; the real
                            API is https://api.imagepipeline.io and spends credits)
  --api-key KEY             required
  --prompt TEXT             required
  --out DIR                 folder for the PNGs (default images)
  --negative-prompt TEXT    what to avoid (default "low quality, blurry, deformed")
  --samples N               1 to 4 images (default 1)
  --width N, --height N     pixels (default 1024)
  --ip-adapter-image URL    face image to lock (default none)
  --poll-interval SECONDS   between status requests (default 2)
  --timeout SECONDS         give up after (default 300)
  --max-retries N           tries again of one call in a row (default 5)
  -h, --help                show this help and exit`;

class UsageError extends Error {}

/** The number of single-character edits between two words. */
function distance(a, b) {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

function parseArgs(argv) {
  const args = {
    "base-url": LOCAL_MOCK, out: "images",
    "negative-prompt": "low quality, blurry, deformed",
    samples: "1", width: "1024", height: "1024", "poll-interval": "2", timeout: "300",
    "max-retries": "5",
  };
  if (argv.includes("--help") || argv.includes("-h")) return null;
  const known = [...Object.keys(args), "api-key", "prompt", "ip-adapter-image"];
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].slice(2);
    if (!argv[i].startsWith("--") || !known.includes(name)) {
      const [close] = known.filter((k) => distance(name, k) <= 2).sort(
        (a, b) => distance(name, a) - distance(name, b),
      );
      const hint = close && argv[i].startsWith("--") ? ` (did you mean --${close}?)` : "";
      throw new UsageError(`unknown option ${argv[i]}${hint}`);
    }
    if (argv[i + 1] === undefined) throw new UsageError(`${argv[i]} needs a value`);
    args[name] = argv[i + 1];
  }
  for (const name of ["api-key", "prompt"]) {
    if (!args[name]) throw new UsageError(`--${name} is required`);
  }
  return args;
}

// What `ipmock fuzz` sets for the client it runs (docs/any-language.md).
const PROTOCOL = [
  "IPMOCK_BASE_URL", "IPMOCK_API_KEY", "IPMOCK_REQUEST", "IPMOCK_OUT", "IPMOCK_POLL_FLOOR",
  "IPMOCK_DEADLINE",
];

/** One generation as `ipmock fuzz` asks it: every setting from its variables. */
async function fromProtocol(env) {
  const missing = PROTOCOL.filter((name) => !env[name]);
  if (missing.length) throw new UsageError(`${missing.join(", ")} not set (ipmock fuzz sets them)`);
  let request;
  try {
    request = JSON.parse(env.IPMOCK_REQUEST);
  } catch (error) {
    throw new UsageError(`IPMOCK_REQUEST is not JSON: ${error.message}`);
  }
  const client = new Client(env.IPMOCK_BASE_URL, env.IPMOCK_API_KEY, {
    pollInterval: Number(env.IPMOCK_POLL_FLOOR), timeout: Number(env.IPMOCK_DEADLINE), retries: 5,
  });
  const answer = await client.poll(await client.submit(request));
  await client.download(answer.download_urls, env.IPMOCK_OUT, "");
}

/** One generation of `request` from code that imports this file: the images as Buffers.
 * Throws an Error whose message names the failing step and the server's own words. */
export async function generate(baseUrl, apiKey, request, options = {}) {
  const { pollInterval = 2, timeout = 300, retries = 5 } = options;
  const client = new Client(baseUrl, apiKey, { pollInterval, timeout, retries });
  const answer = await client.poll(await client.submit(request));
  return client.images(answer.download_urls);
}

async function main() {
  if (process.argv.length === 2 && process.env.IPMOCK_REQUEST) {
    await fromProtocol(process.env);
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  if (args === null) {
    console.log(USAGE);
    return;
  }
  const request = {
    model_id: "sdxl", prompt: args.prompt, negative_prompt: args["negative-prompt"],
    num_inference_steps: 20, guidance_scale: 7.5, samples: Number(args.samples),
    width: Number(args.width), height: Number(args.height),
  };
  if (args["ip-adapter-image"]) {
    Object.assign(request, {
      ip_adapter: ["ip-adapter-plus-face_sdxl_vit-h"], ip_adapter_scale: [0.6],
      ip_adapter_image: args["ip-adapter-image"],
    });
  }
  const client = new Client(args["base-url"], args["api-key"], {
    pollInterval: Number(args["poll-interval"]), timeout: Number(args.timeout),
    retries: Number(args["max-retries"]),
  });
  const answer = await client.poll(await client.submit(request));
  for (const path of await client.download(answer.download_urls, args.out, answer.id)) {
    console.log(path);
  }
}

// Run as a program (not imported): the command line, or ipmock fuzz's protocol.
const script = process.argv[1];
const runAsProgram = script && import.meta.url === pathToFileURL(realpathSync(script)).href;
if (runAsProgram) main().catch((error) => {
  if (error instanceof UsageError) {
    console.error(`${USAGE.split("\n")[0]}\nerror: ${error.message}`);
    process.exit(2);
  }
  console.error(`error: ${error.message}`);
  process.exit(error instanceof ClientError ? error.exitStatus : 1);
});
