// runstore viewer: the one script the pages load (no inline script is allowed).

// A "Copy" button copies the text of the element its data-copy attribute names.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent).then(function () {
    button.textContent = "Copied";
  });
});

// An element with data-charts="ADDRESS" holds a link to a page of charts that take long
// to draw (a run's histograms): fetch that page once this one has loaded, and show its
// section of the same id here. Where that fails, the link stays, with why.
function drawCharts(placeholder) {
  var address = placeholder.getAttribute("data-charts");
  fetch(address, { credentials: "same-origin", headers: { accept: "text/html" } })
    .then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    })
    .then(function (text) {
      var page = new DOMParser().parseFromString(text, "text/html");
      var drawn = page.getElementById(placeholder.id);
      if (!drawn) throw new Error("no charts in " + address);
      placeholder.replaceChildren.apply(
        placeholder,
        Array.prototype.map.call(drawn.childNodes, function (node) {
          return document.importNode(node, true);
        })
      );
      placeholder.classList.add("drawn");
    })
    .catch(function (error) {
      var note = document.createElement("span");
      note.className = "error";
      note.textContent = " (could not be drawn here: " + error.message + ")";
      placeholder.querySelector("p").appendChild(note);
      placeholder.classList.add("failed");
    })
    .finally(function () {
      placeholder.removeAttribute("aria-busy");
    });
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-charts]").forEach(drawCharts);
});
