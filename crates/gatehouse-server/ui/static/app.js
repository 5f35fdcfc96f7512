/* Gatehouse end-user UI: small progressive enhancements. Every page works without this script, except
   solving the CAPTCHA. No framework, no external URL, no eval, no inline handlers (strict CSP). */
(function () {
  "use strict";

  /* 1. Announce the new step: focus its heading. */
  function focusHeading() {
    var heading = document.getElementById("step-heading");
    if (heading) {
      try {
        heading.focus({ preventScroll: true });
      } catch (e) {
        heading.focus();
      }
    }
  }

  /* 2. Auto-poll: the server holds the request until something happens, then renders the next page. */
  function submitForm(form) {
    if (typeof form.requestSubmit === "function") {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  function autoPoll() {
    var form = document.querySelector("form[data-autopoll]");
    if (!form) {
      return;
    }
    document.body.classList.add("polling");
    var timer = window.setTimeout(function () {
      timer = null;
      submitForm(form);
    }, 1000);
    document.addEventListener("submit", function (event) {
      if (timer !== null) {
        window.clearTimeout(timer);
        timer = null;
      }
      if (event.target !== form) {
        /* The person chose something else (e.g. the offline code): stop showing progress. */
        document.body.classList.remove("polling");
      }
    });
  }

  /* 3. CAPTCHA: proof of work in ALTCHA's v1 format. */
  function toHex(buffer) {
    var bytes = new Uint8Array(buffer);
    var out = "";
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return out;
  }

  function parseChallenge(text) {
    var value = JSON.parse(text);
    if (typeof value === "string") {
      /* The server may have handed over the challenge as a JSON string already. */
      value = JSON.parse(value);
    }
    if (!value || typeof value !== "object") {
      throw new Error("challenge");
    }
    return value;
  }

  function solveChallenge(challenge, onProgress) {
    var encoder = new TextEncoder();
    var max = Number(challenge.maxnumber);
    var target = String(challenge.challenge).toLowerCase();
    var salt = String(challenge.salt);
    var batch = 500;
    var reportEvery = 5000;
    var next = 0;
    var lastReport = 0;

    function digest(n) {
      return window.crypto.subtle.digest("SHA-256", encoder.encode(salt + String(n))).then(function (hash) {
        return toHex(hash) === target ? n : -1;
      });
    }

    function round() {
      if (next > max) {
        return Promise.resolve(null);
      }
      var work = [];
      var end = Math.min(next + batch - 1, max);
      for (var n = next; n <= end; n++) {
        work.push(digest(n));
      }
      next = end + 1;
      return Promise.all(work).then(function (results) {
        for (var i = 0; i < results.length; i++) {
          if (results[i] >= 0) {
            return results[i];
          }
        }
        if (next - lastReport >= reportEvery) {
          lastReport = next;
          onProgress(next, max);
        }
        return round();
      });
    }

    if (!isFinite(max) || max < 0 || target === "") {
      return Promise.resolve(null);
    }
    return round();
  }

  function setupCaptcha(box) {
    var status = box.querySelector(".captcha-status");
    var input = box.querySelector('input[name="altcha"]');
    var scope = box.closest("form") || document;
    var buttons = scope.querySelectorAll("[data-needs-captcha]");
    var texts = {
      working: box.getAttribute("data-text-working") || "",
      done: box.getAttribute("data-text-done") || "",
      failed: box.getAttribute("data-text-failed") || ""
    };
    var progress = null;

    function setButtons(disabled) {
      for (var i = 0; i < buttons.length; i++) {
        buttons[i].disabled = disabled;
      }
    }

    function show(text) {
      if (status) {
        status.textContent = text;
      }
    }

    function fail() {
      box.classList.remove("working");
      box.classList.add("failed");
      if (progress) {
        progress.hidden = true;
      }
      show(texts.failed);
      /* Let the person submit anyway: the server answers with a fresh challenge and says why. */
      setButtons(false);
    }

    var challenge;
    try {
      challenge = parseChallenge(box.getAttribute("data-challenge") || "");
    } catch (e) {
      fail();
      return;
    }
    if (!window.crypto || !window.crypto.subtle || typeof window.TextEncoder !== "function" ||
        String(challenge.algorithm).toUpperCase() !== "SHA-256") {
      fail();
      return;
    }

    setButtons(true);
    box.classList.add("working");
    show(texts.working);
    /* Progress goes into a bar outside the live region, so screen readers are not flooded. */
    progress = document.createElement("progress");
    progress.max = Math.max(Number(challenge.maxnumber) || 1, 1);
    progress.value = 0;
    progress.setAttribute("aria-hidden", "true");
    if (status && status.parentNode) {
      status.parentNode.insertBefore(progress, status.nextSibling);
    } else {
      box.appendChild(progress);
    }

    var started = Date.now();
    solveChallenge(challenge, function (done) {
      progress.value = Math.min(done, progress.max);
    }).then(function (number) {
      if (number === null) {
        fail();
        return;
      }
      var payload = {
        algorithm: challenge.algorithm,
        challenge: challenge.challenge,
        number: number,
        salt: challenge.salt,
        signature: challenge.signature,
        took: Date.now() - started
      };
      if (input) {
        input.value = window.btoa(JSON.stringify(payload));
      }
      progress.value = progress.max;
      progress.hidden = true;
      box.classList.remove("working");
      box.classList.add("solved");
      show(texts.done);
      setButtons(false);
    }).catch(fail);
  }

  function captchas() {
    var boxes = document.querySelectorAll(".captcha[data-challenge]");
    for (var i = 0; i < boxes.length; i++) {
      setupCaptcha(boxes[i]);
    }
  }

  /* 4. Password hints: mark which rules the typed password meets (informational; the server decides). */
  function passwordHints() {
    var list = document.getElementById("password-hints");
    if (!list) {
      return;
    }
    var form = list.closest("form");
    if (!form) {
      return;
    }
    /* The two new-password fields; the first two password fields of the form otherwise. */
    var fields = form.querySelectorAll('input[type="password"][autocomplete="new-password"]');
    if (fields.length < 2) {
      fields = form.querySelectorAll('input[type="password"]');
    }
    if (fields.length < 2) {
      return;
    }
    var password = fields[0];
    var repeat = fields[1];
    var minText = list.getAttribute("data-min-length");
    var min = minText === null || minText === "" ? NaN : parseInt(minText, 10);
    var okText = list.getAttribute("data-text-ok") || "";
    var notOkText = list.getAttribute("data-text-not-ok") || "";

    function stateOf(item) {
      var span = item.querySelector(".hint-state");
      if (!span) {
        span = document.createElement("span");
        span.className = "hint-state visually-hidden";
        item.appendChild(span);
      }
      return span;
    }

    function mark(name, met) {
      var item = list.querySelector('li[data-hint="' + name + '"]');
      if (!item) {
        return;
      }
      item.classList.toggle("ok", met);
      item.classList.toggle("not-ok", !met);
      stateOf(item).textContent = " (" + (met ? okText : notOkText) + ")";
    }

    function update() {
      var a = password.value;
      var b = repeat.value;
      if (!isNaN(min)) {
        mark("length", Array.from(a).length >= min);
      }
      mark("match", a !== "" && a === b);
      /* "guessable" stays informational: only the server can tell. */
    }

    password.addEventListener("input", update);
    repeat.addEventListener("input", update);
  }

  function init() {
    focusHeading();
    passwordHints();
    captchas();
    autoPoll();
  }

  var started = false;
  function start() {
    if (!started) {
      started = true;
      init();
    }
  }

  if (document.readyState === "complete") {
    start();
  } else {
    document.addEventListener("DOMContentLoaded", start);
    window.addEventListener("load", start);
  }
})();
