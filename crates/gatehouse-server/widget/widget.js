/*
 * Gatehouse two-step widget, for a third-party application's own two-step page:
 *
 *   <div id="gatehouse-widget"></div>
 *   <script src="https://gatehouse.example/v1/widget.js" data-app="APPLICATION_ID" data-ticket="TICKET"></script>
 *
 * The application's server gets TICKET from POST /v1/widget/ticket (with its API key; the page never sees the
 * key). The widget pushes a request to the person's phone and shows the number to pick there; a code from the
 * authenticator works instead. Once approved, the browser goes to the application's registered callback URL
 * with ?token=, which the application's server exchanges at POST /v1/token.
 *
 * Everything is built with DOM calls and textContent (no HTML strings), so nothing the server or the page says
 * can inject markup, and the widget runs under a strict Content-Security-Policy of the host page.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) {
    return;
  }
  var base = new URL(script.src).origin;
  var app = script.getAttribute("data-app") || "";
  var ticket = script.getAttribute("data-ticket") || "";
  var root = document.getElementById("gatehouse-widget");
  if (!root) {
    root = document.createElement("div");
    script.parentNode.insertBefore(root, script.nextSibling);
  }
  var approvalId = null;
  var generation = 0;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") {
        node.textContent = attrs[k];
      } else if (k === "style") {
        Object.assign(node.style, attrs[k]);
      } else {
        node.setAttribute(k, attrs[k]);
      }
    });
    (children || []).forEach(function (c) {
      node.appendChild(c);
    });
    return node;
  }

  function button(label, onClick, name) {
    var b = el("button", { type: "button", "data-gatehouse": name, text: label, style: {
      font: "inherit", padding: "0.5em 1em", marginTop: "0.75em", cursor: "pointer" } });
    b.addEventListener("click", onClick);
    return b;
  }

  var status = el("p", { role: "status", "aria-live": "polite", "data-gatehouse": "status",
    style: { minHeight: "1.5em" } });

  function show(children) {
    generation += 1;
    while (root.firstChild) {
      root.removeChild(root.firstChild);
    }
    var box = el("section", { "aria-label": "Two-step verification", "data-gatehouse": "widget", style: {
      fontFamily: "system-ui, sans-serif", border: "1px solid #8a8a8a", borderRadius: "8px", padding: "1em 1.25em",
      maxWidth: "24em" } }, children.concat([status]));
    root.appendChild(box);
    return generation;
  }

  function say(text) {
    status.textContent = text;
  }

  function call(action, body) {
    body.ticket = ticket;
    return fetch(base + "/v1/widget/" + encodeURIComponent(app) + "/" + action, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (doc) {
        if (!response.ok) {
          var error = new Error((doc.error && doc.error.message) || response.statusText);
          error.code = doc.error && doc.error.code;
          throw error;
        }
        return doc.result;
      });
    });
  }

  function failed(error) {
    say(error && error.message ? error.message : "Two-step verification is unavailable; try again later.");
  }

  function go(url) {
    say("Approved. Signing you in…");
    window.location.assign(url);
  }

  function heading(text) {
    return el("h2", { text: text, style: { fontSize: "1.2em", margin: "0 0 0.5em" } });
  }

  function start() {
    show([heading("Two-step verification")]);
    say("Sending a request to your phone…");
    call("start", {}).then(function (result) {
      if (result.token_required) {
        askCode("Type a code from your authenticator to continue.");
        return;
      }
      approvalId = result.approval_id;
      var mine = show([
        heading("Approve on your phone"),
        el("p", { text: "Open your authenticator and pick this number:" }),
        el("p", { "data-gatehouse": "number", "aria-label": "Number to pick: " + result.number,
          text: String(result.number), style: { fontSize: "2.5em", fontWeight: "700", margin: "0.25em 0" } }),
        button("Use a code instead", function () {
          askCode("Type the code your authenticator shows.");
        }, "use-code")
      ]);
      say("Waiting for your answer…");
      wait(mine);
    }, failed);
  }

  function wait(mine) {
    call("wait", { approval_id: approvalId }).then(function (result) {
      if (mine !== generation) {
        return;
      }
      if (result.status === "approved") {
        go(result.redirect);
      } else if (result.status === "pending") {
        wait(mine);
      } else if (result.status === "denied") {
        askCode("You denied the request on your phone. To continue, type a code from your authenticator.");
      } else {
        show([
          heading("Two-step verification"),
          el("p", { text: "The request expired." }),
          button("Send a new request", start, "restart")
        ]);
      }
    }, function (error) {
      if (mine === generation) {
        failed(error);
      }
    });
  }

  function askCode(why) {
    var input = el("input", { id: "gatehouse-code", name: "code", inputmode: "numeric",
      autocomplete: "one-time-code", maxlength: "16", "data-gatehouse": "code",
      style: { font: "inherit", padding: "0.4em", width: "10em" } });
    var form = el("form", { "data-gatehouse": "code-form" }, [
      el("p", { text: why }),
      el("label", { for: "gatehouse-code", text: "Code", style: { display: "block", marginBottom: "0.25em" } }),
      input,
      el("div", {}, [el("button", { type: "submit", "data-gatehouse": "send-code", text: "Continue", style: {
        font: "inherit", padding: "0.5em 1em", marginTop: "0.75em", cursor: "pointer" } })])
    ]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      say("Checking…");
      call("code", { code: input.value, approval_id: approvalId }).then(function (result) {
        go(result.redirect);
      }, function (error) {
        failed(error);
        input.focus();
      });
    });
    show([heading("Two-step verification"), form]);
    input.focus();
  }

  start();
})();
