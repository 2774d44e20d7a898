/* Per-file upload progress for the studio (progressive enhancement: without it the form posts normally).
   Files go one at a time to the JSON API with the page's CSRF token; each gets a progress bar and, when
   the server has inspected it, either its facts or the reason it was refused. */
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var input = form.querySelector('input[type="file"]');
  var list = document.getElementById("upload-progress");
  var csrf = form.querySelector('input[name="csrf_token"]').value;
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 0;

  function row(file) {
    var li = document.createElement("li");
    var name = document.createElement("span");
    name.textContent = file.name + " ";
    var bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    var status = document.createElement("span");
    status.className = "upload-status";
    status.textContent = " waiting";
    li.appendChild(name); li.appendChild(bar); li.appendChild(status);
    list.appendChild(li);
    return { li: li, bar: bar, status: status };
  }

  function describe(track) {
    var audio = track.audio || {};
    var seconds = Math.round((audio.duration_ms || 0) / 1000);
    var length = Math.floor(seconds / 60) + ":" + ("0" + (seconds % 60)).slice(-2);
    return " ✓ “" + track.title + "” — " + String(audio.format || "").toUpperCase() + ", " + length;
  }

  function send(file, ui, done) {
    if (maxBytes && file.size > maxBytes) {
      ui.status.textContent = " ✗ larger than the upload limit";
      ui.li.className = "error";
      return done(false);
    }
    var data = new FormData();
    data.append("files", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.getAttribute("data-api"));
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        ui.bar.value = Math.round(e.loaded * 100 / e.total);
        ui.status.textContent = e.loaded < e.total ? " uploading " + ui.bar.value + "%" : " checking the audio…";
      }
    };
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
      if (xhr.status === 201 && body && body.items) {
        ui.bar.value = 100;
        ui.status.textContent = describe(body.items[0]);
        done(true);
      } else {
        ui.status.textContent = " ✗ " + ((body && body.detail) || ("upload failed (HTTP " + xhr.status + ")"));
        ui.li.className = "error";
        done(false);
      }
    };
    xhr.onerror = function () {
      ui.status.textContent = " ✗ the connection failed; try again";
      ui.li.className = "error";
      done(false);
    };
    ui.status.textContent = " uploading";
    xhr.send(data);
  }

  form.addEventListener("submit", function (event) {
    var files = Array.prototype.slice.call(input.files || []);
    if (!files.length) { return; }
    event.preventDefault();
    list.innerHTML = "";
    var rows = files.map(row);
    var failures = 0;
    var button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    (function next(i) {
      if (i >= files.length) {
        button.disabled = false;
        if (!failures) { window.location.reload(); return; }
        var li = document.createElement("li");
        var link = document.createElement("a");
        link.href = window.location.href;
        link.textContent = "Show the uploaded tracks";
        li.appendChild(link);
        list.appendChild(li);
        return;
      }
      send(files[i], rows[i], function (ok) { if (!ok) { failures += 1; } next(i + 1); });
    })(0);
  });
}());
