#!/usr/bin/env node
// Generate images with the ImagePipeline SDXL text-to-image API (or ipmock) and save them.
//
//   node examples/js_client.mjs --base-url http://127.0.0.1:8000 \
//       --api-key test_pending-then-success --out images --prompt "a red fox in the snow"
//
// Submits like the API docs do, polls the status endpoint until SUCCESS or FAILURE, waits
// as long as Retry-After says on 429/503, and prints the path of every image it saved.
// Node 18+ (global fetch); no npm packages. The default --base-url is the local mock
// (`ipmock serve`); the real API costs credits, so it is used only when named.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

const LOCAL_MOCK = "http://127.0.0.1:8000";
const SUBMIT_PATH = "/sdxl/text2image/v1";
const STATUS_PATH = "/sdxl/text2image/v1/status/";

class ApiError extends Error {}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/** One API call; on 429/503 wait for Retry-After and try again until the deadline (ms). */
async function call(url, apiKey, deadline, init = {}) {
  for (;;) {
    const response = await fetch(url, {
      ...init,
      headers: { "API-Key": apiKey },
      signal: AbortSignal.timeout(30_000),
    });
    if (response.status === 429 || response.status === 503) {
      const retryAfter = response.headers.get("Retry-After") ?? "";
      const wait = /^\d+$/.test(retryAfter) ? Number(retryAfter) : 1;
      if (Date.now() + wait * 1000 > deadline) {
        throw new ApiError(`gave up: HTTP ${response.status} past the deadline`);
      }
      await sleep(wait);
      continue;
    }
    let body;
    try {
      body = await response.json();
    } catch {
      throw new ApiError(`HTTP ${response.status}: the answer is not JSON`);
    }
    if (body.status === "FAILURE" || !response.ok) {
      throw new ApiError(`${body.error ?? "unknown error"} (HTTP ${response.status})`);
    }
    return body;
  }
}

/** Submit one request and poll until it succeeds; return the job id and download URLs. */
async function generate(baseUrl, apiKey, request, { pollInterval = 2, timeout = 300 } = {}) {
  const base = baseUrl.replace(/\/+$/, "");
  const deadline = Date.now() + timeout * 1000;
  // As in the docs: the body is JSON text, sent as bytes so that no Content-Type is added.
  let result = await call(base + SUBMIT_PATH, apiKey, deadline, {
    method: "POST",
    body: new TextEncoder().encode(JSON.stringify(request)),
  });
  while (result.status === "PENDING") {
    if (Date.now() + pollInterval * 1000 > deadline) {
      throw new ApiError(`job ${result.id} still PENDING after ${timeout} s`);
    }
    await sleep(pollInterval);
    result = await call(base + STATUS_PATH + encodeURIComponent(result.id), apiKey, deadline);
  }
  return { id: result.id, urls: result.download_urls };
}

/** Save each URL as PREFIX-N.png in outDir. The URLs need no API key: none is sent. */
async function download(urls, outDir, prefix = "image") {
  await mkdir(outDir, { recursive: true });
  const paths = [];
  for (const [n, url] of urls.entries()) {
    const response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
    if (!response.ok) throw new ApiError(`download ${url}: HTTP ${response.status}`);
    const path = join(outDir, `${prefix}-${n}.png`);
    await writeFile(path, Buffer.from(await response.arrayBuffer()));
    paths.push(path);
  }
  return paths;
}

const USAGE = `usage: node js_client.mjs --api-key KEY --prompt TEXT [options]

Generate images with the ImagePipeline SDXL text-to-image API (or ipmock) and save them.

options:
  --base-url URL            the API (default ${LOCAL_MOCK}, \`ipmock serve\`; the real
                            API is https://api.imagepipeline.io and spends credits)
  --api-key KEY             required
  --prompt TEXT             required
  --out DIR                 folder for the PNGs (default images)
  --negative-prompt TEXT    (default "low quality, blurry, deformed")
  --samples N               1 to 4 images (default 1)
  --width N, --height N     (default 1024)
  --ip-adapter-image URL    face image to lock
  --poll-interval SECONDS   (default 2)
  --timeout SECONDS         (default 300)
  -h, --help                show this help and exit`;

class UsageError extends Error {}

function parseArgs(argv) {
  const args = {
    "base-url": LOCAL_MOCK, out: "images",
    "negative-prompt": "low quality, blurry, deformed",
    samples: "1", width: "1024", height: "1024", "poll-interval": "2", timeout: "300",
  };
  if (argv.includes("--help") || argv.includes("-h")) return null;
  const known = new Set([...Object.keys(args), "api-key", "prompt", "ip-adapter-image"]);
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].slice(2);
    if (!argv[i].startsWith("--") || !known.has(name)) {
      throw new UsageError(`unknown option ${argv[i]}`);
    }
    if (argv[i + 1] === undefined) throw new UsageError(`${argv[i]} needs a value`);
    args[name] = argv[i + 1];
  }
  for (const name of ["api-key", "prompt"]) {
    if (!args[name]) throw new UsageError(`--${name} is required`);
  }
  return args;
}

async function main() {
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
  const { id, urls } = await generate(args["base-url"], args["api-key"], request, {
    pollInterval: Number(args["poll-interval"]), timeout: Number(args.timeout),
  });
  for (const path of await download(urls, args.out, id)) console.log(path);
}

main().catch((error) => {
  if (error instanceof UsageError) {
    console.error(`${USAGE.split("\n")[0]}\nerror: ${error.message}`);
    process.exit(2);
  }
  console.error(`error: ${error.message}`);
  process.exit(1);
});
