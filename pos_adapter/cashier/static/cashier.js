/* The cashier web terminal: scanner-gun field, camera scanning, live quote, keyboard use.
   No build step, no libraries. Amounts are sent as the typed text: the server converts
   yuan to fen exactly (never a float here). */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : "";

  // Buttons that ask first (full refund, void): Enter accepts, Esc cancels the dialog.
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (target && !window.confirm(target.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
  // Forms submit once: a second click or Enter while the first is on its way does nothing
  // (the server's idempotency key covers browser retries as well).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id === "scan-form" || form.method.toLowerCase() !== "post") return;
    if (event.defaultPrevented) return;
    if (form.getAttribute("data-sent") === "1") {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sent", "1");
  });
  var printButton = document.getElementById("print-button");
  if (printButton) {
    printButton.addEventListener("click", function () { window.print(); });
  }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !document.getElementById("till")) {
      var next = document.getElementById("next-sale");
      if (next) next.focus();
    }
  });

  var till = document.getElementById("till");
  if (!till) return;
  var msg = function (name) { return till.getAttribute("data-msg-" + name) || ""; };

  var scanForm = document.getElementById("scan-form");
  var codeInput = document.getElementById("code-input");
  var scanStatus = document.getElementById("scan-status");
  var holderBox = document.getElementById("holder");
  var saleForm = document.getElementById("sale-form");
  var saleCode = document.getElementById("sale-code");
  var amount = document.getElementById("amount");
  var useIntegrity = document.getElementById("use-integrity");
  var pinField = document.getElementById("pin-field");
  var pin = document.getElementById("pin");
  var quoteError = document.getElementById("quote-error");
  var confirmButton = document.getElementById("confirm");
  var state = { code: "", pinRequired: false, quoteTimer: 0, quoteSeq: 0 };

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": csrfToken
      },
      body: JSON.stringify(body)
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        return { ok: resp.ok, status: resp.status, data: data };
      });
    });
  }

  function errorText(result) {
    var error = result.data && result.data.error;
    return (error && error.message) || msg("network");
  }

  function items() {
    var list = [];
    saleForm.querySelectorAll("input.qty").forEach(function (input) {
      var qty = input.value.trim();
      if (qty !== "" && qty !== "0") list.push({ sku: input.getAttribute("data-sku"), qty: qty });
    });
    return list;
  }

  function showHolder(data) {
    var holder = data.holder;
    text("holder-name", holder.display_name);
    var badge = document.getElementById("holder-level");
    badge.textContent = holder.level ? holder.level.label : msg("no-level");
    badge.className = "badge" + (holder.level ? " rank-" + holder.level.rank : " rank-none");
    text("holder-kind", data.code_kind === "card" ? msg("card") : msg("dynamic"));
    text("holder-village", holder.village + (holder.status !== "active" ? " · " + msg("frozen") : ""));
    text("holder-integrity", data.wallet.integrity_yuan);
    text("holder-points", String(data.wallet.points));
    text("holder-rate", data.discount_percent);
    var list = document.getElementById("holder-benefits");
    list.textContent = "";
    data.benefits.forEach(function (title) {
      var li = document.createElement("li");
      li.textContent = title;
      list.appendChild(li);
    });
    document.getElementById("holder-benefits-box").hidden = data.benefits.length === 0;
    holderBox.hidden = false;
  }

  function resetQuote() {
    text("q-amount", "0.00");
    text("q-discount", "0.00");
    text("q-rate", "");
    text("q-points", "0");
    text("q-due", "0.00");
    quoteError.hidden = true;
  }

  function reset() {
    state.code = "";
    state.pinRequired = false;
    state.quoteSeq += 1;
    saleCode.value = "";
    codeInput.value = "";
    amount.value = "";
    pin.value = "";
    pinField.hidden = true;
    holderBox.hidden = true;
    saleForm.querySelectorAll("input.qty").forEach(function (input) { input.value = ""; });
    var saleError = document.getElementById("sale-error");
    if (saleError) saleError.remove();
    scanStatus.textContent = "";
    resetQuote();
    codeInput.focus();
  }

  function scan(code) {
    code = (code || "").trim();
    if (!code) {
      codeInput.focus();
      return;
    }
    scanStatus.textContent = msg("working");
    post(till.getAttribute("data-scan-url"), { code: code }).then(function (result) {
      codeInput.value = "";
      if (!result.ok) {
        state.code = "";
        saleCode.value = "";
        holderBox.hidden = true;
        scanStatus.textContent = errorText(result);
        codeInput.focus();
        return;
      }
      scanStatus.textContent = "";
      state.code = code;
      saleCode.value = code;
      state.pinRequired = !!result.data.pin_required;
      pinField.hidden = !state.pinRequired;
      showHolder(result.data);
      quoteSoon(0);
      if (state.pinRequired && document.getElementById("sale-error")) {
        pin.focus(); // back after a refused PIN
      } else {
        amount.focus();
        amount.select();
      }
    }, function () {
      scanStatus.textContent = msg("network");
      codeInput.focus();
    });
  }

  function quote() {
    if (!state.code) return;
    var seq = ++state.quoteSeq;
    post(till.getAttribute("data-quote-url"), {
      code: state.code,
      amount: amount.value,
      items: items(),
      use_integrity: useIntegrity.checked
    }).then(function (result) {
      if (seq !== state.quoteSeq) return; // a newer quote is on its way
      if (!result.ok) {
        quoteError.textContent = errorText(result);
        quoteError.hidden = false;
        return;
      }
      var q = result.data;
      quoteError.hidden = true;
      text("q-amount", q.amount_yuan);
      text("q-rate", "(" + q.discount_percent + ")");
      text("q-discount", q.integrity_discount_yuan);
      text("q-points", String(q.points_cost));
      text("q-due", q.cash_due_yuan);
    }, function () {
      if (seq !== state.quoteSeq) return;
      quoteError.textContent = msg("network");
      quoteError.hidden = false;
    });
  }

  function quoteSoon(delay) {
    window.clearTimeout(state.quoteTimer);
    state.quoteTimer = window.setTimeout(quote, delay === undefined ? 250 : delay);
  }

  // A scanner gun types the code and presses Enter: the field's form "submits".
  scanForm.addEventListener("submit", function (event) {
    event.preventDefault();
    scan(codeInput.value);
  });

  // A code scanned while the cursor sits in the amount field lands there: take it as a scan.
  function looksLikeCode(value) {
    return value.length > 24 && /[A-Za-z]/.test(value);
  }
  amount.addEventListener("input", function () {
    if (!looksLikeCode(amount.value)) quoteSoon();
  });
  amount.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && looksLikeCode(amount.value)) {
      event.preventDefault();
      var code = amount.value;
      amount.value = "";
      scan(code);
    }
  });
  useIntegrity.addEventListener("change", function () { quoteSoon(0); });
  saleForm.querySelectorAll("input.qty").forEach(function (input) {
    input.addEventListener("input", function () { quoteSoon(); });
  });

  saleForm.addEventListener("submit", function (event) {
    if (!state.code) {
      event.preventDefault();
      scanStatus.textContent = msg("scan-first");
      codeInput.focus();
      return;
    }
    if (state.pinRequired && !/^\d{6}$/.test(pin.value)) {
      event.preventDefault();
      quoteError.textContent = msg("pin-needed");
      quoteError.hidden = false;
      pin.focus();
      return;
    }
    confirmButton.disabled = true;
  });

  document.getElementById("cancel").addEventListener("click", reset);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      stopCamera();
      reset();
    }
  });

  // Camera scanning where the browser has a BarcodeDetector that reads QR codes.
  var cameraButton = document.getElementById("camera-button");
  var cameraBox = document.getElementById("camera");
  var video = document.getElementById("camera-video");
  var camera = { stream: null, timer: 0 };

  function stopCamera() {
    window.clearTimeout(camera.timer);
    if (camera.stream) {
      camera.stream.getTracks().forEach(function (track) { track.stop(); });
      camera.stream = null;
    }
    video.srcObject = null;
    cameraBox.hidden = true;
  }

  function startCamera(detector) {
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (stream) {
        camera.stream = stream;
        video.srcObject = stream;
        cameraBox.hidden = false;
        return video.play();
      })
      .then(function () {
        var look = function () {
          if (!camera.stream) return;
          detector.detect(video).then(function (codes) {
            var found = codes.length ? codes[0].rawValue : "";
            if (found) {
              stopCamera();
              scan(found);
            } else {
              camera.timer = window.setTimeout(look, 200);
            }
          }, function () { camera.timer = window.setTimeout(look, 400); });
        };
        look();
      })
      .catch(function () {
        stopCamera();
        scanStatus.textContent = msg("camera-off");
        codeInput.focus();
      });
  }

  if ("BarcodeDetector" in window && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    window.BarcodeDetector.getSupportedFormats().then(function (formats) {
      if (formats.indexOf("qr_code") === -1) return;
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      cameraButton.hidden = false;
      cameraButton.addEventListener("click", function () { startCamera(detector); });
      document.getElementById("camera-stop").addEventListener("click", function () {
        stopCamera();
        codeInput.focus();
      });
    }, function () { /* no detector: the field and the scanner gun remain */ });
  }

  // Back after a refusal: the form still holds the code; look the holder up again.
  if (saleCode.value) {
    scan(saleCode.value);
  } else {
    codeInput.focus();
  }
})();
