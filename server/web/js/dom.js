// Building the page: every piece of data becomes a text node, never markup.

/**
 * h("div.card.big", {title: "…", onclick: fn, dataset: {id: 3}}, "text", child, [more])
 * Strings and numbers become text nodes; null, undefined and false are skipped.
 */
export function h(spec, props, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (props && (typeof props !== "object" || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "class") el.className = [el.className, value].filter(Boolean).join(" ");
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key in el && key !== "list") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Set text only when it changed (keeps selections and avoids layout work). */
export function setText(el, text) {
  const value = String(text);
  if (el.textContent !== value) el.textContent = value;
}

export function setAttr(el, name, value) {
  const text = String(value);
  if (el.getAttribute(name) !== text) el.setAttribute(name, text);
}

/** A progress bar: `bar.set(fraction)`; role=progressbar with aria-valuenow in percent. */
export function progressBar(extraClass = "") {
  const fill_ = h("span.fill");
  const el = h(`div.bar${extraClass ? "." + extraClass : ""}`, {
    role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0,
  }, fill_);
  el.set = (fraction, state) => {
    const pct = Math.max(0, Math.min(100, Math.round((fraction || 0) * 1000) / 10));
    fill_.style.width = `${pct}%`;
    setAttr(el, "aria-valuenow", pct);
    if (state) setAttr(el, "data-state", state);
  };
  return el;
}

/** A status word in its colour. */
export function badge(status) {
  return h("span.badge", { dataset: { state: status } }, status);
}

export function updateBadge(el, status) {
  setText(el, status);
  if (el.dataset.state !== status) el.dataset.state = status;
}

/** A button that runs an async action once at a time, showing errors in the notice bar. */
export function actionButton(label, action, extra = {}) {
  const button = h("button", { type: "button", ...extra }, label);
  button.addEventListener("click", async (event) => {
    event.stopPropagation();
    if (button.disabled) return;
    button.disabled = true;
    try {
      await action();
    } catch (err) {
      notify(err.message || String(err), "error");
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

let noticeTimer = 0;

/** A short message in the bar under the header (errors stay until the next message). */
export function notify(message, kind = "info") {
  const el = document.getElementById("notice");
  if (!el) return;
  clearTimeout(noticeTimer);
  el.dataset.kind = kind;
  el.textContent = message;
  el.hidden = !message;
  if (message && kind !== "error") noticeTimer = setTimeout(() => { el.hidden = true; }, 4000);
}
