/* Farmer pages: the live credit code and the history's "more" button. No build step. */
(function () {
  "use strict";

  function codePage(box) {
    var img = document.getElementById("qr");
    var left = document.getElementById("left");
    var status = document.getElementById("status");
    var refreshAt = 0;
    var expiresAt = 0;
    var busy = false;

    // Times are relative to the server's answer: the phone's own clock may be wrong.
    function arm(refreshIn, expiresIn) {
      var now = Date.now();
      refreshAt = now + refreshIn * 1000;
      expiresAt = now + expiresIn * 1000;
    }

    function refresh() {
      busy = true;
      fetch(box.getAttribute("data-url"), {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" }
      })
        .then(function (r) {
          if (r.status === 401) {
            window.location.reload();
          }
          if (!r.ok) {
            throw new Error("HTTP " + r.status);
          }
          return r.json();
        })
        .then(function (c) {
          img.src = c.image;
          box.setAttribute("data-expires-at", c.expires_at);
          box.setAttribute("data-refreshes", String(+(box.getAttribute("data-refreshes") || 0) + 1));
          arm(c.refresh_in, c.expires_in);
          status.textContent = "";
          busy = false;
          tick();
        })
        .catch(function () {
          status.textContent = status.getAttribute("data-offline");
          refreshAt = Date.now() + 5000;
          busy = false;
        });
    }

    function tick() {
      var now = Date.now();
      var secs = Math.max(0, Math.ceil((expiresAt - now) / 1000));
      left.textContent = String(secs);
      if (secs <= 0) {
        box.className = "code expired";
        status.textContent = status.getAttribute("data-expired");
      } else {
        box.className = "code";
      }
      if (now >= refreshAt && !busy) {
        refresh();
      }
    }

    arm(+box.getAttribute("data-refresh-in"), +box.getAttribute("data-expires-in"));
    setInterval(tick, 500);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        tick();
      }
    });
  }

  function historyMore(link) {
    var list = document.getElementById("history");
    link.addEventListener("click", function (ev) {
      ev.preventDefault();
      var href = link.getAttribute("href");
      link.setAttribute("aria-busy", "true");
      fetch(href + (href.indexOf("?") < 0 ? "?" : "&") + "partial=1", {
        credentials: "same-origin",
        cache: "no-store"
      })
        .then(function (r) {
          if (!r.ok) {
            throw new Error("HTTP " + r.status);
          }
          var next = r.headers.get("X-Next-Url");
          return r.text().then(function (html) {
            list.insertAdjacentHTML("beforeend", html);
            if (next) {
              link.setAttribute("href", next);
              link.removeAttribute("aria-busy");
            } else {
              link.parentNode.removeChild(link);
            }
          });
        })
        .catch(function () {
          window.location.href = href; // fall back to the plain next page
        });
    });
  }

  var box = document.getElementById("code");
  if (box) {
    codePage(box);
  }
  var more = document.getElementById("more");
  if (more) {
    historyMore(more);
  }
})();
