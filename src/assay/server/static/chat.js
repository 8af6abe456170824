// Assay chat: follows a running question, cancels it, pages rows and copies queries
// without reloading the page. Everything also works without this file (plain forms/links).
"use strict";
(function () {
  const csrf = () => {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  };
  const fragment = (html) => {
    const t = document.createElement("template");
    t.innerHTML = html;  // server-rendered, every value escaped there
    return t.content;
  };
  const signInAgain = () => { window.location.reload(); };
  const askButtons = (disabled) => {
    document.querySelectorAll("form.ask button[type=submit]").forEach((b) => {
      b.disabled = disabled;
    });
  };

  async function follow(turn) {
    const url = turn.dataset.poll;
    let delay = 300;
    for (;;) {
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 1.5, 2000);
      let response;
      try {
        response = await fetch(url, { headers: { "X-Fragment": "1" }, credentials: "same-origin" });
      } catch (e) { continue; }  // a network blip: try again
      if (response.status === 401) { signInAgain(); return; }
      if (response.status === 429) {  // the key's rate limit: wait as told, then go on
        const wait = Number(response.headers.get("Retry-After") || "5");
        await new Promise((r) => setTimeout(r, wait * 1000));
        continue;
      }
      if (!response.ok) return;
      const state = response.headers.get("X-Assay-State") || "";
      const html = await response.text();
      const next = fragment(html).firstElementChild;
      if (!next) return;
      if (state === "COMPLETE" || state === "FAILED" || state === "CANCELLED") {
        turn.replaceWith(next);
        wire(next);
        const heading = next.querySelector("h2");
        if (heading && document.activeElement && turn.contains(document.activeElement)) {
          heading.focus();
        }
        const live = document.getElementById("announce");
        if (live) live.textContent = "Answer ready: " + (heading ? heading.textContent : "");
        askButtons(false);
        return;
      }
      const now = turn.querySelector(".progress-message");
      const then = next.querySelector(".progress-message");
      if (now && then && now.textContent !== then.textContent) now.textContent = then.textContent;
    }
  }

  function wire(root) {
    root.querySelectorAll("form[data-cancel]").forEach((form) => {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const button = form.querySelector("button");
        if (button) { button.disabled = true; button.textContent = "Cancelling…"; }
        const response = await fetch(form.action, {
          method: "POST", body: new FormData(form), credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf(), "X-Fragment": "1" },
        });
        if (response.status === 401) signInAgain();
      });
    });
    root.querySelectorAll("[data-poll]").forEach((turn) => { askButtons(true); follow(turn); });
    root.querySelectorAll("button[data-copy]").forEach((button) => {
      button.addEventListener("click", async () => {
        const source = document.getElementById(button.dataset.copy);
        if (!source) return;
        try {
          await navigator.clipboard.writeText(source.textContent);
          button.textContent = "Copied";
        } catch (e) {  // no clipboard (plain http): select it for Ctrl+C
          const range = document.createRange();
          range.selectNodeContents(source);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          button.textContent = "Selected: press Ctrl+C";
        }
      });
    });
    root.querySelectorAll(".rows").forEach(wireRows);
    root.querySelectorAll("img.chart").forEach((img) => {  // nothing to chart: no broken image
      if (img.complete && img.naturalWidth === 0) img.remove();
      else img.addEventListener("error", () => img.remove());
    });
  }

  function wireRows(box) {
    box.addEventListener("click", async (event) => {
      const link = event.target.closest("a[data-page]");
      if (!link) return;
      event.preventDefault();
      const response = await fetch(link.href, {
        headers: { "X-Fragment": "1" }, credentials: "same-origin",
      });
      if (response.status === 401) { signInAgain(); return; }
      if (!response.ok) return;
      const next = fragment(await response.text()).firstElementChild;
      if (!next) return;
      box.replaceWith(next);
      wireRows(next);
      const again = next.querySelector("a[data-page]");
      const caption = next.querySelector("caption");
      if (caption) { caption.tabIndex = -1; caption.focus(); } else if (again) again.focus();
    });
  }

  function topicsFollowModel(form) {
    const model = form.querySelector("select[name=model]");
    const topic = form.querySelector("select[name=topic]");
    if (!model || !topic) return;
    const sync = () => {
      topic.querySelectorAll("option[data-model]").forEach((option) => {
        const hidden = option.dataset.model !== model.value;
        option.hidden = hidden;
        option.disabled = hidden;
        if (hidden && option.selected) topic.value = "";
      });
    };
    model.addEventListener("change", sync);
    sync();
  }

  document.querySelectorAll("form.ask").forEach((form) => {
    topicsFollowModel(form);
    const prompt = form.querySelector("textarea");
    if (prompt) {
      prompt.addEventListener("keydown", (event) => {  // Ctrl/Cmd+Enter asks
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
      });
    }
  });
  wire(document);
})();
