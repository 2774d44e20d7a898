/* Ninety's player: one player bar for the whole site.
 *
 * Each track on a page is a `.listen` element holding a plain <audio controls> (what plays without
 * JavaScript). This script hides those, shows a Play button instead, and plays through the bar: it asks
 * the site for a play (stream URLs, full or preview, whether an audio ad comes first), plays the VAST ad
 * first when asked to, then the track, and reports how much of it was heard (a play counts after 30 s).
 * While something plays, links inside the site swap the page's <main> with fetch and the history API,
 * so the music keeps playing as the listener moves around; pages with scripts of their own load normally.
 */
(function () {
  "use strict";

  var bar = document.getElementById("player");
  if (!bar) { return; }
  var audio = document.getElementById("player-audio");
  var toggle = document.getElementById("player-toggle");
  var nextButton = document.getElementById("player-next");
  var titleEl = document.getElementById("player-title");
  var statusEl = document.getElementById("player-status");
  var wave = document.getElementById("player-wave");
  var seek = document.getElementById("player-seek");
  var timeEl = document.getElementById("player-time");
  var buy = document.getElementById("player-buy");
  var csrf = bar.getAttribute("data-csrf") || "";
  var SESSION_KEY = "ninety.listening.session";
  var BEACON_EVERY_S = 10;
  var COUNT_AFTER_S = 30;
  var NO_NAVIGATION = /^\/(download|files|stream|ads|listen|static)\/|^\/tracks\/\d+\/free|^\/(signout|signin|signup)/;

  var state = {
    queue: [], index: -1, ticket: null, phase: "idle", heard: 0, lastTime: null, reported: 0,
    peaks: null, ad: null, adFired: {}
  };
  window.ninetyPlayer = { state: state, audio: audio };

  function setStatus(text) { statusEl.textContent = text || ""; }

  function fmt(seconds) {
    if (!isFinite(seconds) || seconds < 0) { seconds = 0; }
    var m = Math.floor(seconds / 60);
    var s = Math.floor(seconds % 60);
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function sessionId() {
    try { return window.sessionStorage.getItem(SESSION_KEY); } catch (e) { return null; }
  }

  function keepSession(id) {
    try { window.sessionStorage.setItem(SESSION_KEY, id); } catch (e) { /* private mode: one session per page */ }
  }

  // --- the page's tracks ------------------------------------------------------------------------------------
  function describe(el) {
    return {
      id: el.getAttribute("data-track-id"), title: el.getAttribute("data-title"),
      artist: el.getAttribute("data-artist"), playUrl: el.getAttribute("data-play-url"),
      waveUrl: el.getAttribute("data-waveform-url"), pageUrl: el.getAttribute("data-page-url")
    };
  }

  function enhance(root) {
    var items = root.querySelectorAll(".listen");
    Array.prototype.forEach.call(items, function (el) {
      if (el.getAttribute("data-enhanced")) { return; }
      el.setAttribute("data-enhanced", "1");
      var native = el.querySelector("audio.listen-native");
      var button = el.querySelector(".listen-play");
      if (native) { native.pause(); native.hidden = true; }
      if (button) {
        button.hidden = false;
        button.addEventListener("click", function () { playFrom(el); });
      }
    });
  }

  function playFrom(el) {
    var seen = {};
    var queue = [];
    var start = 0;
    Array.prototype.forEach.call(document.querySelectorAll(".listen"), function (item) {
      var d = describe(item);
      if (seen[d.id]) { if (item === el) { start = seen[d.id] - 1; } return; }
      queue.push(d);
      seen[d.id] = queue.length;
      if (item === el) { start = queue.length - 1; }
    });
    var wanted = queue[start];
    if (state.phase === "track" && state.queue[state.index] && wanted && state.queue[state.index].id === wanted.id) {
      togglePlay();
      return;
    }
    state.queue = queue;
    startAt(start);
  }

  // --- a play ---------------------------------------------------------------------------------------------
  function startAt(index) {
    report(true);
    var item = state.queue[index];
    if (!item) { stopAll(); return; }
    state.index = index;
    state.ticket = null;
    bar.hidden = false;
    titleEl.textContent = item.title + " — " + item.artist;
    setStatus("Loading…");
    buy.hidden = true;
    nextButton.disabled = index >= state.queue.length - 1;
    loadWaveform(item.waveUrl);
    fetch(item.playUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ session_id: sessionId() })
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (state.index !== index) { return; }
      if (!result.ok) { setStatus(result.body.detail || "This track cannot be played right now."); return; }
      var ticket = result.body;
      state.ticket = ticket;
      keepSession(ticket.session_id);
      if (ticket.buy_url) { buy.href = ticket.buy_url; buy.hidden = false; buy.textContent = "Buy"; }
      if (ticket.ad_first && ticket.vast_url) {
        fetchAd(ticket.vast_url).then(function (ad) {
          if (state.index !== index) { return; }
          if (ad) { playAd(ad, function () { playTrack(ticket); }); } else { playTrack(ticket); }
        });
      } else {
        playTrack(ticket);
      }
    }).catch(function () { setStatus("The player could not reach the site; try again."); });
  }

  function pickSource(sources) {
    for (var i = 0; i < sources.length; i++) {
      if (audio.canPlayType(sources[i].type)) { return sources[i].url; }
    }
    return sources.length ? sources[0].url : "";
  }

  function playTrack(ticket) {
    state.phase = "track";
    state.heard = 0;
    state.lastTime = null;
    state.reported = 0;
    seek.disabled = false;
    audio.src = pickSource(ticket.sources);
    setStatus(ticket.access === "preview" ? "30-second preview" :
      (ticket.full_plays_left !== null ? "Full play (" + ticket.full_plays_left + " left, then a preview)" : ""));
    var playing = audio.play();
    if (playing && playing.catch) { playing.catch(function () { setStatus("Press Play to listen."); }); }
    mediaSession();
  }

  function stopAll() {
    audio.pause();
    state.phase = "idle";
    showToggle();
  }

  // --- the audio ad (VAST 4.2) -------------------------------------------------------------------------------
  function text(node) { return node ? (node.textContent || "").trim() : ""; }

  function fetchAd(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : "";
    }).then(function (xml) {
      if (!xml) { return null; }
      var doc = new DOMParser().parseFromString(xml, "application/xml");
      var ad = doc.querySelector("Ad");
      var media = ad && ad.querySelector("MediaFile");
      if (!ad || !media || !text(media)) { return null; }
      var events = {};
      Array.prototype.forEach.call(ad.querySelectorAll("Tracking"), function (t) {
        events[t.getAttribute("event")] = text(t);
      });
      return { media: text(media), impression: text(ad.querySelector("Impression")), events: events,
               title: text(ad.querySelector("AdTitle")), click: text(ad.querySelector("ClickThrough")) };
    }).catch(function () { return null; });
  }

  function ping(url) {
    if (!url) { return; }
    fetch(url, { credentials: "same-origin", keepalive: true }).catch(function () {});
  }

  function playAd(ad, then) {
    state.phase = "ad";
    state.ad = ad;
    state.adFired = {};
    state.afterAd = then;
    seek.disabled = true;
    setStatus("Advertisement" + (ad.title ? ": " + ad.title : "") + " — your track plays after it");
    audio.src = ad.media;
    var playing = audio.play();
    if (playing && playing.catch) { playing.catch(function () { setStatus("Press Play to hear the ad, then your track."); }); }
  }

  function adProgress() {
    var ad = state.ad;
    if (!ad) { return; }
    var fired = state.adFired;
    var fraction = audio.duration ? audio.currentTime / audio.duration : 0;
    if (!fired.start && audio.currentTime > 0) {
      fired.start = true;
      ping(ad.impression);
      ping(ad.events.start);
    }
    [["firstQuartile", 0.25], ["midpoint", 0.5], ["thirdQuartile", 0.75]].forEach(function (pair) {
      if (!fired[pair[0]] && fraction >= pair[1]) { fired[pair[0]] = true; ping(ad.events[pair[0]]); }
    });
  }

  // --- listening time and the play beacon --------------------------------------------------------------------
  function report(final) {
    var ticket = state.ticket;
    if (!ticket || state.phase !== "track") { return; }
    var heardMs = Math.floor(state.heard * 1000);
    if (heardMs <= state.reported) { return; }
    state.reported = heardMs;
    var body = new URLSearchParams({ token: ticket.play_token, heard_ms: String(heardMs) });
    if (final && navigator.sendBeacon) {
      navigator.sendBeacon(ticket.beacon_url, body);
      return;
    }
    fetch(ticket.beacon_url, { method: "POST", credentials: "same-origin", body: body, keepalive: true })
      .catch(function () {});
  }

  function trackProgress() {
    var now = audio.currentTime;
    if (state.lastTime !== null && !audio.seeking && !audio.paused) {
      var step = now - state.lastTime;
      // time heard, not time skipped: a seek jumps further than playback moves between two updates
      if (step > 0 && step < 1.5 * Math.max(1, audio.playbackRate)) { state.heard += step; }
    }
    state.lastTime = now;
    var heard = state.heard;
    var reported = state.reported / 1000;
    if ((heard >= COUNT_AFTER_S && reported < COUNT_AFTER_S) || heard - reported >= BEACON_EVERY_S) { report(false); }
  }

  // --- the bar's controls --------------------------------------------------------------------------------------
  function showToggle() {
    var playing = !audio.paused && !audio.ended;
    toggle.textContent = playing ? "Pause" : "Play";
    toggle.setAttribute("aria-label", playing ? "Pause" : "Play");
  }

  function togglePlay() {
    if (!audio.src) { return; }
    if (audio.paused) { audio.play(); } else { audio.pause(); report(false); }
  }

  function duration() {
    if (state.phase === "track" && isFinite(audio.duration)) { return audio.duration; }
    if (state.phase === "track" && state.ticket) { return state.ticket.duration_ms / 1000; }
    return isFinite(audio.duration) ? audio.duration : 0;
  }

  function seekTo(fraction) {
    if (state.phase !== "track") { return; }
    var total = duration();
    if (!total) { return; }
    state.lastTime = null;
    audio.currentTime = Math.max(0, Math.min(total - 0.05, fraction * total));
  }

  function drawWave() {
    var ctx = wave.getContext && wave.getContext("2d");
    if (!ctx) { return; }
    var w = wave.width;
    var h = wave.height;
    ctx.clearRect(0, 0, w, h);
    var peaks = state.peaks;
    var total = duration();
    var played = total ? audio.currentTime / total : 0;
    if (state.phase !== "track") { played = 0; }
    if (!peaks || !peaks.max || !peaks.max.length) {
      ctx.fillStyle = "#ccc";
      ctx.fillRect(0, h / 2 - 1, w, 2);
      ctx.fillStyle = "#333";
      ctx.fillRect(0, h / 2 - 1, w * played, 2);
      return;
    }
    var n = peaks.max.length;
    for (var x = 0; x < w; x++) {
      var i = Math.floor(x / w * n);
      var top = (1 - Math.max(0, peaks.max[i])) * h / 2;
      var bottom = (1 - Math.min(0, peaks.min[i])) * h / 2;
      ctx.fillStyle = x / w <= played ? "#1d4ed8" : "#9ca3af";
      ctx.fillRect(x, top, 1, Math.max(1, bottom - top));
    }
  }

  function loadWaveform(url) {
    state.peaks = null;
    drawWave();
    if (!url) { return; }
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (peaks) { state.peaks = peaks; drawWave(); }).catch(function () {});
  }

  function mediaSession() {
    if (!("mediaSession" in navigator)) { return; }
    var item = state.queue[state.index];
    try {
      navigator.mediaSession.metadata = new window.MediaMetadata({ title: item.title, artist: item.artist });
      navigator.mediaSession.setActionHandler("nexttrack", function () { startAt(state.index + 1); });
    } catch (e) { /* not supported */ }
  }

  audio.addEventListener("timeupdate", function () {
    if (state.phase === "ad") { adProgress(); } else if (state.phase === "track") { trackProgress(); }
    var total = duration();
    if (state.phase === "track" && total) { seek.value = String(Math.round(audio.currentTime / total * 1000)); }
    seek.setAttribute("aria-valuetext", fmt(audio.currentTime) + " of " + fmt(total));
    timeEl.textContent = fmt(audio.currentTime) + " / " + fmt(total);
    drawWave();
  });
  audio.addEventListener("seeking", function () { state.lastTime = null; });
  audio.addEventListener("play", showToggle);
  audio.addEventListener("pause", showToggle);
  audio.addEventListener("ended", function () {
    showToggle();
    if (state.phase === "ad") {
      ping(state.ad && state.ad.events.complete);
      var then = state.afterAd;
      state.ad = null;
      state.afterAd = null;
      if (then) { then(); }
      return;
    }
    if (state.phase !== "track") { return; }
    report(true);
    var ticket = state.ticket;
    if (ticket && ticket.access === "preview") {
      setStatus(ticket.buy_url ? "That was the 30-second preview. Buy the track to hear all of it." :
        "That was the 30-second preview.");
      if (ticket.buy_url) { buy.hidden = false; buy.textContent = "Buy to hear it all"; buy.focus(); }
      return;
    }
    if (state.index < state.queue.length - 1) { startAt(state.index + 1); }
  });
  audio.addEventListener("error", function () {
    if (state.phase === "ad") {  // a broken ad never keeps the music from playing
      var then = state.afterAd;
      state.ad = null;
      state.afterAd = null;
      if (then) { then(); }
      return;
    }
    if (state.phase === "track") { setStatus("The stream could not be played; press Play to try again."); }
  });
  toggle.addEventListener("click", togglePlay);
  nextButton.addEventListener("click", function () { startAt(state.index + 1); });
  seek.addEventListener("input", function () { seekTo(Number(seek.value) / 1000); });
  wave.addEventListener("click", function (event) {
    var box = wave.getBoundingClientRect();
    seekTo((event.clientX - box.left) / box.width);
  });
  window.addEventListener("pagehide", function () { report(true); });

  // --- moving through the site while the music plays ----------------------------------------------------------
  function sameSiteLink(a, event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey ||
        event.altKey) { return false; }
    if (a.target && a.target !== "_self") { return false; }
    if (a.hasAttribute("download") || a.getAttribute("rel") === "external") { return false; }
    if (a.origin !== window.location.origin) { return false; }
    if (NO_NAVIGATION.test(a.pathname)) { return false; }
    if (a.pathname === window.location.pathname && a.search === window.location.search && a.hash) { return false; }
    return true;
  }

  function loaded(selector, attribute, node) {
    var value = node.getAttribute(attribute);
    return Array.prototype.some.call(document.querySelectorAll(selector), function (el) {
      return el.getAttribute(attribute) === value;
    });
  }

  function navigate(url, push) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("text/html") !== 0) { window.location.assign(url); return; }
      return response.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var main = doc.querySelector("main");
        var scripts = doc.querySelectorAll("script[src]");
        var foreign = Array.prototype.some.call(scripts, function (s) { return !loaded("script[src]", "src", s); });
        if (!main || foreign) { window.location.assign(response.url || url); return; }
        Array.prototype.forEach.call(doc.querySelectorAll("head link[rel=stylesheet]"), function (link) {
          if (!loaded("link[rel=stylesheet]", "href", link)) { document.head.appendChild(document.importNode(link, true)); }
        });
        var current = document.querySelector("main");
        current.innerHTML = main.innerHTML;
        document.title = doc.title;
        if (push) { window.history.pushState({ ninety: true }, "", response.url || url); }
        current.setAttribute("tabindex", "-1");
        current.focus();
        window.scrollTo(0, 0);
        enhance(current);
      });
    }).catch(function () { window.location.assign(url); });
  }

  document.addEventListener("click", function (event) {
    if (!state.ticket || audio.paused) { return; }  // nothing playing: the browser navigates as usual
    var a = event.target.closest ? event.target.closest("a[href]") : null;
    if (!a || !sameSiteLink(a, event)) { return; }
    event.preventDefault();
    navigate(a.href, true);
  });
  window.history.replaceState({ ninety: true }, "", window.location.href);
  window.addEventListener("popstate", function (event) {
    if (event.state && event.state.ninety && state.ticket) { navigate(window.location.href, false); }
    else if (event.state && event.state.ninety) { window.location.reload(); }
  });

  enhance(document);
})();
