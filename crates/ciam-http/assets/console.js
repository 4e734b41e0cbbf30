// The console's one script: copy buttons, and a page that shows a secret
// once taking the URL of the page it stands for (so reloading it does not
// post its form again). Everything works without it.
const here = document.querySelector("[data-location]");
if (here && window.history.replaceState) {
  window.history.replaceState(null, "", here.dataset.location);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    const label = button.textContent;
    button.textContent = button.dataset.copied || label;
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});
