// The farm's JSON API (docs/api.md) over `POST /api`, with the token when one is set.

const TOKEN_KEY = "brender.token";

export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

let unauthorized = () => {};
let skew = 0; // the server's clock minus ours, in seconds (from the Date header)

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** Now on the server's clock (Unix seconds): job times come from there. */
export function serverNow() {
  return Date.now() / 1000 + skew;
}

function noteClock(resp) {
  const date = Date.parse(resp.headers.get("Date") || "");
  if (Number.isNaN(date)) return;
  const diff = (date + 500 - Date.now()) / 1000; // the header is to the second
  skew = Math.abs(diff) < 1.5 ? 0 : diff;
}

/** Send one request object (or a list) and answer the decoded answer (or list). */
export async function call(requests) {
  const headers = { "Content-Type": "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch("/api", {
      method: "POST", headers, body: JSON.stringify(requests), cache: "no-store",
    });
  } catch {
    throw new ApiError("offline", "Cannot reach the farm's server.");
  }
  noteClock(resp);
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new ApiError("bad_json", `The server answered ${resp.status} without JSON.`);
  }
  const answers = Array.isArray(body) ? body : [body];
  if (answers.some((a) => a && !a.ok && a.error && a.error.code === "unauthorized")) {
    unauthorized();
    throw new ApiError("unauthorized", "This farm needs a token.");
  }
  return body;
}

function check(answer) {
  if (!answer || !answer.ok) {
    const error = (answer && answer.error) || { code: "internal", message: "no answer" };
    throw new ApiError(error.code, error.message);
  }
  return answer;
}

/** One request; answers `{ok, data, total…}` or throws ApiError. */
export async function ask(request) {
  return check(await call(request));
}

/** Several requests in one HTTP round trip (one consistent look at the farm). */
export async function askAll(requests) {
  const answers = await call(requests);
  return answers.map(check);
}

/** Every row of a read from `offset` on, page by page. A page holds at most 10,000 rows, and
 * fewer when they would not fit in one answer (docs/api.md): the next starts after the last. */
export async function readAll(request, offset = 0) {
  const rows = [];
  for (;;) {
    const answer = await ask({ ...request, limit: 10000, offset: offset + rows.length });
    rows.push(...answer.data);
    if (!answer.data.length || offset + rows.length >= answer.total) return rows;
  }
}

/** A file the server serves to the token (a thumbnail, a movie) as a `blob:` URL: fetched
 * with the token in the Authorization header, so it never appears in an address (docs/api.md,
 * "Thumbnails"). The caller revokes the URL (URL.revokeObjectURL) once done with it. */
async function authedBlobUrl(url, missing) {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch(url, { headers });
  } catch {
    throw new ApiError("offline", "Cannot reach the farm's server.");
  }
  if (resp.status === 401) {
    unauthorized();
    throw new ApiError("unauthorized", "This farm needs a token.");
  }
  if (!resp.ok) throw new ApiError("not_found", `${missing} (${resp.status}).`);
  return URL.createObjectURL(await resp.blob());
}

/** A frame's thumbnail as a `blob:` URL for an <img>. */
export function thumbBlobUrl(frameId, size, version) {
  const params = new URLSearchParams({ size: String(size) });
  if (version) params.set("v", String(version));
  return authedBlobUrl(`/thumb/${encodeURIComponent(frameId)}?${params}`, "No thumbnail");
}

/** Save a job output (a job read's `outputs[].url`) as `name`: fetched as a blob with the
 * token header, then handed to the browser's download by a transient <a download>. */
export async function saveOutput(url, name) {
  const blob = await authedBlobUrl(url, "No such output");
  const link = document.createElement("a");
  link.href = blob;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(blob), 60000);
}
