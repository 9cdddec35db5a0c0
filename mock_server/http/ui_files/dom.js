// What the dashboard's modules share: DOM nodes built from text (never HTML), the admin
// API's calls (the token, when there is one, as a header), and how times are written.

export const page = document.body.dataset;
export const SUBMIT_PATH = page.submitPath;
export const STATUS_PREFIX = page.statusPrefix;
export const IMAGE_PREFIX = page.imagePrefix;
const TOKEN_HEADER = page.tokenHeader;
export const TOKEN_KEY = "ipmock.adminToken";

export const $ = (id) => document.getElementById(id);

/** An element with properties (className, title, ...) and children (nodes or text). */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export class AdminError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The admin token as a request header (none without a token). */
export function tokenHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { [TOKEN_HEADER]: token } : {};
}

/** One admin call; its JSON answer, or AdminError with the server's own words. */
export async function admin(method, path, body) {
  const headers = tokenHeaders();
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch("/__mock/" + path, init);
  } catch (error) {
    throw new AdminError(0, "the server did not answer (" + error.message + ")");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const said = data && typeof data.error === "string" ? data.error : null;
    throw new AdminError(response.status, said || response.status + " " + response.statusText);
  }
  return data;
}

export function clockTime(seconds) {
  const iso = new Date(seconds * 1000).toISOString();
  return iso.slice(11, 23);
}

export function relative(seconds) {
  const sign = seconds < 0 ? "-" : "+";
  const s = Math.abs(seconds);
  return sign + (s < 10 ? s.toFixed(2) : s < 100 ? s.toFixed(1) : Math.round(s)) + " s";
}

export function short(text, keep = 10) {
  if (typeof text !== "string") return "—";
  return text.length > keep + 1 ? text.slice(0, keep) + "…" : text;
}

export function pretty(json, text) {
  if (json !== null && json !== undefined) return JSON.stringify(json, null, 2);
  return text || "";
}
