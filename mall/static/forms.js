// One submission per click, on the admin and farmer pages (served from the app's /static).
// On a slow connection a second click (or Enter) on a form that is already being sent would
// post it again: a second partner, a second appeal. The first submit goes; repeats within a
// few seconds are dropped. The buttons stay enabled (a disabled button would drop its own
// name and value from the form, and some forms have two: approve and reject). A page
// restored by the back button is submittable again.
(function () {
  var RESEND_AFTER_MS = 8000; // a form answered by a download leaves the page as it was

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") {
      return;
    }
    if (form.dataset.sending === "1") {
      event.preventDefault();
      return;
    }
    form.dataset.sending = "1";
    window.setTimeout(function () {
      delete form.dataset.sending;
    }, RESEND_AFTER_MS);
  });

  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sending]").forEach(function (form) {
      delete form.dataset.sending;
    });
  });
})();
