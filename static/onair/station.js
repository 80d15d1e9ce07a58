// Live station page: one WebSocket to /ws/stations/<slug>/, reconnecting with backoff,
// except after a refusal (close 4401: not signed in, 4403: not a member or access revoked).
// The page is rendered with the current state; `playback_status` messages (sent when the
// state changes, and every ~15 s as a keepalive) keep the now-playing card current, and
// `queue_update` messages the queue, `schedule_update` the programme card (re-read from the
// timeline API); editors drive the player through the REST API
// (/api/v1/stations/<slug>/…). The progress bar moves with the clock between messages:
// `position` is as of the message's `server_time`, and the page keeps the server clock's
// offset from its own. Text comes from the page.
(function () {
  "use strict";
  var root = document.getElementById("station");
  if (!root) { return; }
  var slug = root.dataset.slug;
  var canEdit = root.dataset.canEdit === "true";
  var apiBase = "/api/v1/stations/" + slug + "/";
  var live = document.getElementById("live-state");
  var worker = document.getElementById("worker-state");
  var list = document.getElementById("notifications");
  var delay = 1000;
  var socketOpen = false;
  var wasOpen = false;  // the socket was live once: a later opening is a reconnection

  function byId(id) { return document.getElementById(id); }
  function jsonFrom(id, fallback) {
    var node = byId(id);
    return node ? JSON.parse(node.textContent) : fallback;
  }

  var labels = jsonFrom("playback-labels", {kind: {}, reason: {}});
  var status = jsonFrom("playback-status", null);
  var receivedAt = Date.now();
  var offsets = [];  // server clock − this clock, from the last messages (ms)
  var serverOffset = 0;

  // A message's server_time is a little older than its arrival (the trip): the largest of the
  // recent offsets is the one with the shortest trip. A few only, so a clock change is followed.
  function syncClock(data) {
    var sent = data && data.server_time ? Date.parse(data.server_time) : NaN;
    if (isNaN(sent)) { return; }
    offsets.push(sent - Date.now());
    if (offsets.length > 5) { offsets.shift(); }
    serverOffset = Math.max.apply(null, offsets);
  }
  var known = {};  // queue item id → the fullest data seen (worker messages carry fewer fields)

  function showWorker(up) {
    worker.textContent = up ? worker.dataset.upText : worker.dataset.downText;
    worker.className = up ? "up" : "down";
  }

  // --- Notifications ------------------------------------------------------------

  function addNotification(n) {
    var empty = list.querySelector(".empty");
    if (empty) { empty.remove(); }
    var li = document.createElement("li");
    li.className = n.level;
    var time = document.createElement("time");
    time.dateTime = n.created_at;
    time.textContent = new Date(n.created_at).toLocaleString(document.documentElement.lang);
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = n.message;
    li.append(time, " ", text);
    if (n.created_by) {
      var by = document.createElement("span");
      by.className = "by";
      by.textContent = " — " + n.created_by;
      li.append(by);
    }
    list.prepend(li);
  }

  // --- Now playing --------------------------------------------------------------

  var card = byId("now-playing");

  function clock(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) { return "–:––"; }
    var total = Math.max(0, Math.floor(seconds));
    var h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
    var ss = (s < 10 ? "0" : "") + s;
    return h ? h + ":" + (m < 10 ? "0" : "") + m + ":" + ss : m + ":" + ss;
  }

  function stateOf(data) {
    if (!data.worker || !data.worker.up) { return "offline"; }
    if (data.stopped) { return "stopped"; }
    if (data.paused) { return "paused"; }
    return data.is_playing ? "playing" : "idle";
  }

  function elapsed() {
    var current = status && status.current;
    if (!current) { return 0; }
    var position = current.position || 0;
    if (stateOf(status) === "playing") {
      var sent = status.server_time ? Date.parse(status.server_time) : NaN;
      position += isNaN(sent) ? (Date.now() - receivedAt) / 1000
                              : Math.max(0, Date.now() + serverOffset - sent) / 1000;
    }
    return current.duration ? Math.min(position, current.duration) : position;
  }

  function renderProgress() {
    if (!card) { return; }
    var current = status && status.current;
    var bar = byId("np-progress");
    var done = elapsed();
    var duration = current && current.duration;
    byId("np-elapsed").textContent = clock(done);
    byId("np-remaining").textContent = duration ? "-" + clock(duration - done) : "";
    byId("np-fill").style.inlineSize = (duration ? Math.min(100, 100 * done / duration) : 0) + "%";
    bar.setAttribute("aria-valuemax", duration ? Math.round(duration) : 0);
    bar.setAttribute("aria-valuenow", Math.round(done));
  }

  function renderStatus(data) {
    // Later status messages leave the queue out (it comes in queue_update): keep the last one.
    if (!Array.isArray(data.queue) && status && Array.isArray(status.queue)) { data.queue = status.queue; }
    status = data;
    receivedAt = Date.now();
    syncClock(data);
    showWorker(data.worker && data.worker.up);
    if (!card) { return; }
    var state = stateOf(data);
    var badge = byId("np-state");
    card.dataset.state = state;
    badge.className = "state-badge " + state;
    badge.textContent = card.dataset["state" + state.charAt(0).toUpperCase() + state.slice(1)];
    var current = data.current;
    byId("np-title").textContent = current ? current.title : "—";
    byId("np-artist").textContent = current ? current.artist || "" : "";
    byId("np-kind").textContent = current ? labels.kind[current.kind] || current.kind : "";
    byId("np-reason").textContent = current && current.reason ? " · " + (labels.reason[current.reason] || current.reason) : "";
    var pause = byId("pause-resume");
    if (pause) {
      pause.dataset.command = data.paused ? "resume" : "pause";
      pause.textContent = data.paused ? pause.dataset.resumeText : pause.dataset.pauseText;
    }
    var volume = byId("volume");
    if (volume && document.activeElement !== volume) { volume.value = data.volume; }
    byId("volume-value").textContent = data.volume;
    renderProgress();
  }

  // --- Queue --------------------------------------------------------------------

  var queueList = byId("queue-list");

  function button(text, action, label, disabled, extra) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "small" + (extra ? " " + extra : "");
    b.dataset.action = action;
    b.textContent = text;
    b.title = label;
    b.setAttribute("aria-label", label);
    b.disabled = !!disabled;
    return b;
  }

  function renderQueue(items) {
    if (!queueList) { return; }
    var waiting = items.filter(function (item) { return item.status !== "playing"; }).map(function (item) {
      // The worker's messages leave out who asked for an item: keep what the queue messages said.
      var merged = Object.assign({}, known[item.id] || {});
      Object.keys(item).forEach(function (key) {
        if (item[key] !== null && item[key] !== undefined) { merged[key] = item[key]; }
      });
      if (item.id !== null && item.id !== undefined) { known[item.id] = merged; }
      return merged;
    });
    queueList.replaceChildren();
    if (!waiting.length) {
      var empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = queueList.dataset.empty;
      queueList.append(empty);
      return;
    }
    waiting.forEach(function (item, index) {
      var track = item.track || {};
      var li = document.createElement("li");
      li.className = "queue-item";
      li.dataset.id = item.id;
      var text = document.createElement("span");
      text.className = "q-text";
      var title = document.createElement("strong");
      title.className = "q-title";
      title.textContent = track.title;
      text.append(title);
      if (track.artist) {
        var artist = document.createElement("span");
        artist.className = "q-artist";
        artist.textContent = track.artist;
        text.append(" ", artist);
      }
      var meta = [labels.kind[track.kind] || track.kind, clock(track.duration),
                  labels.reason[item.reason] || item.reason];
      if (item.requested_by) { meta.push(queueList.dataset.by.replace("%(name)s", item.requested_by)); }
      var details = document.createElement("span");
      details.className = "q-meta";
      details.textContent = meta.filter(Boolean).join(" · ");
      text.append(" ", details);
      li.append(text);
      if (canEdit && item.id !== null && item.id !== undefined) {
        var actions = document.createElement("span");
        actions.className = "q-actions";
        actions.append(button("↑", "up", queueList.dataset.up, index === 0),
                       button("↓", "down", queueList.dataset.down, index === waiting.length - 1),
                       button("✕", "remove", queueList.dataset.remove, false, "secondary"));
        li.append(actions);
      }
      queueList.append(li);
    });
  }

  // --- Talking to the API ---------------------------------------------------------

  var message = byId("control-message");

  function say(text, isError) {
    if (!message) { return; }
    message.textContent = text;
    message.className = "control-message" + (isError ? " error" : "");
  }

  function csrfToken() {
    var field = document.querySelector("[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function errorText(body, fallback) {
    if (!body) { return fallback; }
    if (body.detail) { return body.detail; }
    var first = Object.keys(body)[0];
    var value = first && body[first];
    return Array.isArray(value) ? value.join(" ") : value || fallback;
  }

  function request(method, path, body) {
    var options = {method: method, credentials: "same-origin",
                   headers: {"Accept": "application/json", "X-CSRFToken": csrfToken()}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(apiBase + path, options).then(function (response) {
      if (response.status === 204) { return null; }
      return response.json().catch(function () { return null; }).then(function (data) {
        if (!response.ok) { throw new Error(errorText(data, response.statusText)); }
        return data;
      });
    });
  }

  function failed(error) { say(message.dataset.failed + " " + error.message, true); }

  function refreshQueueIfOffline() {
    // Live updates normally bring the new queue; without a socket, ask for it.
    if (!socketOpen) { request("GET", "queue").then(renderQueue).catch(failed); }
  }

  if (canEdit) {
    var transport = byId("transport");
    transport.addEventListener("click", function (event) {
      var target = event.target.closest("button[data-command]");
      if (!target) { return; }
      request("POST", "player/" + target.dataset.command).then(function () {
        say(message.dataset.sent, false);
      }).catch(failed);
    });
    var volume = byId("volume");
    volume.addEventListener("input", function () { byId("volume-value").textContent = volume.value; });
    volume.addEventListener("change", function () {
      request("POST", "player/volume", {volume: Number(volume.value)}).then(function () {
        say(message.dataset.sent, false);
      }).catch(failed);
    });

    queueList.addEventListener("click", function (event) {
      var target = event.target.closest("button[data-action]");
      if (!target) { return; }
      var li = target.closest("li[data-id]");
      var items = Array.prototype.slice.call(queueList.querySelectorAll("li[data-id]"));
      var index = items.indexOf(li);
      var done;
      if (target.dataset.action === "remove") {
        done = request("DELETE", "queue/" + li.dataset.id);
      } else {
        var to = target.dataset.action === "up" ? index - 1 : index + 1;
        done = request("PATCH", "queue/" + li.dataset.id, {to_index: Math.max(0, to)});
      }
      done.then(refreshQueueIfOffline).catch(failed);
    });

    // Add to the queue: search the library, then Next / End / Play now.
    var search = byId("track-search");
    var results = byId("search-results");
    var timer = null, asked = 0;

    function resultItem(track) {
      var li = document.createElement("li");
      li.dataset.track = track.id;
      var text = document.createElement("span");
      text.className = "r-text";
      var title = document.createElement("strong");
      title.textContent = track.title;
      text.append(title);
      if (track.artist) { text.append(" " + track.artist); }
      var meta = document.createElement("span");
      meta.className = "q-meta";
      meta.textContent = " " + [labels.kind[track.kind] || track.kind, clock(track.duration)].join(" · ")
        + (track.is_playable ? "" : " · " + results.dataset.unplayable);
      text.append(meta);
      var actions = document.createElement("span");
      actions.className = "q-actions";
      actions.append(button(results.dataset.next, "next", results.dataset.nextLabel, !track.is_playable),
                     button(results.dataset.end, "end", results.dataset.endLabel, !track.is_playable),
                     button(results.dataset.playNow, "play-now", results.dataset.playNowLabel,
                            !track.is_playable, "secondary"));
      li.append(text, actions);
      return li;
    }

    function runSearch() {
      var term = search.value.trim();
      var ticket = ++asked;
      if (!term) { results.replaceChildren(); return; }
      request("GET", "tracks?enabled=true&search=" + encodeURIComponent(term)).then(function (page) {
        if (ticket !== asked) { return; }  // a newer search is on its way
        var tracks = page.results || page;
        results.replaceChildren();
        if (!tracks.length) {
          var none = document.createElement("li");
          none.className = "empty";
          none.textContent = results.dataset.none;
          results.append(none);
        }
        tracks.slice(0, 20).forEach(function (track) { results.append(resultItem(track)); });
      }).catch(failed);
    }

    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(runSearch, 250);
    });
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); clearTimeout(timer); runSearch(); }
    });
    results.addEventListener("click", function (event) {
      var target = event.target.closest("button[data-action]");
      if (!target) { return; }
      var track = Number(target.closest("li[data-track]").dataset.track);
      var action = target.dataset.action;
      var done = action === "play-now"
        ? request("POST", "player/play-now", {track: track}).then(function () { say(message.dataset.sent, false); })
        : request("POST", "queue", {track: track, at: action}).then(function () { say(message.dataset.added, false); });
      done.then(refreshQueueIfOffline).catch(failed);
    });
  }

  // --- Programme ------------------------------------------------------------------
  // What starts in the next 24 h, times in the station's zone (not the browser's). Re-read from
  // the timeline API when the programme changes (`schedule_update`), after a reconnection (updates
  // may have been missed) and every 5 minutes, so entries that have ended drop off.

  var programme = byId("programme-card");
  var PROGRAMME_HOURS = 24, PROGRAMME_ENTRIES = 6, PROGRAMME_EVERY = 5 * 60 * 1000;
  var programmeAsked = 0, programmeTimer = null;
  var hhmm, weekday, ymd;

  function zoneFormat(locale, options) {
    try {
      return new Intl.DateTimeFormat(locale, Object.assign({timeZone: programme.dataset.zone}, options));
    } catch (e) {  // a zone this browser does not know: its own
      return new Intl.DateTimeFormat(locale, options);
    }
  }

  if (programme) {
    var lang = document.documentElement.lang || undefined;
    hhmm = zoneFormat(lang, {hour: "2-digit", minute: "2-digit", hourCycle: "h23"});  // as the page: H:i
    weekday = zoneFormat(lang, {weekday: "short"});
    ymd = zoneFormat("en-US", {year: "numeric", month: "numeric", day: "numeric"});
  }

  function dayNumber(date) {  // the station's local date, as a day count
    var parts = {};
    ymd.formatToParts(date).forEach(function (part) { parts[part.type] = part.value; });
    return Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day)) / 86400000;
  }

  function timeNode(iso) {
    var node = document.createElement("time");
    node.dateTime = iso;
    node.textContent = hhmm.format(new Date(iso));
    return node;
  }

  function when(startIso, endIso, now) {
    var span = document.createElement("span");
    span.className = "p-when";
    var start = new Date(startIso);
    var days = dayNumber(start) - dayNumber(now);
    if (days === 1) { span.append(programme.dataset.tomorrow + " "); }
    else if (days > 1) { span.append(weekday.format(start) + " "); }
    var times = document.createElement("span");
    times.dir = "ltr";  // 10:00–11:00 reads the same way in Hebrew
    times.append(timeNode(startIso));
    if (endIso) { times.append("–", timeNode(endIso)); }
    span.append(times);
    return span;
  }

  // `own`: text people wrote, in either language: isolated (<bdi>), so an English title keeps
  // its punctuation in a Hebrew page, while the line keeps the page's direction.
  function textNode(tag, className, text, own) {
    var node = document.createElement(tag);
    node.className = className;
    if (own) {
      var isolated = document.createElement("bdi");
      isolated.textContent = text;
      node.append(isolated);
    } else {
      node.textContent = text;
    }
    return node;
  }

  function renderProgramme(data) {
    if (!programme) { return; }
    var now = new Date(Date.now() + serverOffset);
    var entries = (data.entries || []).filter(function (entry) {
      return Date.parse(entry.end) > now.getTime();
    }).slice(0, PROGRAMME_ENTRIES);
    var rows = byId("programme-list");
    rows.replaceChildren();
    if (!entries.length) { rows.append(textNode("li", "empty", rows.dataset.empty)); }
    entries.forEach(function (entry) {
      var li = document.createElement("li");
      li.className = "programme-entry";
      li.dataset.key = entry.key;
      var hard = entry.mode === "hard";
      li.append(when(entry.start, entry.end, now), " ",
                textNode("strong", "p-label", entry.label || programme.dataset.untitled, true), " ",
                textNode("span", "mode-badge " + (hard ? "hard" : "soft"),
                         hard ? programme.dataset.hard : programme.dataset.soft), " ",
                textNode("span", "p-source", entry.source === "calendar" ? programme.dataset.calendar
                                                                         : programme.dataset.slot));
      if (entry.notes && entry.notes.length) {
        li.append(" ", textNode("span", "p-notes", entry.notes.join(" · "), true));
      }
      rows.append(li);
    });

    var unresolved = (data.unresolved || []).filter(function (event) {
      return event.starts_at && Date.parse(event.ends_at || event.starts_at) > now.getTime();
    });
    var problems = byId("programme-unresolved");
    problems.replaceChildren();
    unresolved.forEach(function (event) {
      var li = document.createElement("li");
      li.dataset.id = event.id;
      li.append(when(event.starts_at, event.ends_at, now), " ",
                textNode("strong", "p-label", event.summary || programme.dataset.untitled, true), " ",
                textNode("span", "p-problem", event.problem || "", true));
      problems.append(li);
    });
    byId("programme-problems").hidden = !unresolved.length;

    var notes = (data.notes || []).filter(function (note) {  // all-day notes: those of today
      return note.starts_at && Date.parse(note.starts_at) <= now.getTime()
        && (!note.ends_at || Date.parse(note.ends_at) > now.getTime());
    });
    var noteList = byId("programme-notes");
    noteList.replaceChildren();
    notes.forEach(function (note) {
      noteList.append(textNode("li", "", note.summary || programme.dataset.untitled, true));
    });
    byId("programme-today").hidden = !notes.length;
  }

  function refreshProgramme() {
    if (!programme) { return; }
    var ticket = ++programmeAsked;
    var start = new Date(Date.now() + serverOffset);
    var end = new Date(start.getTime() + PROGRAMME_HOURS * 3600 * 1000);
    request("GET", "timeline?start=" + encodeURIComponent(start.toISOString())
                   + "&end=" + encodeURIComponent(end.toISOString())).then(function (data) {
      if (ticket === programmeAsked) { renderProgramme(data); }  // else a newer read is on its way
    }).catch(function (error) {
      // The card keeps what it showed; the next change or the next 5 minutes try again.
      if (window.console) { console.warn("programme not refreshed: " + error.message); }
    });
  }

  function programmeChanged() {  // one read for a burst of changes (a calendar sync saves many)
    clearTimeout(programmeTimer);
    programmeTimer = setTimeout(refreshProgramme, 300);
  }

  if (status) {
    renderStatus(status);
    if (Array.isArray(status.queue)) { renderQueue(status.queue); }
  }
  setInterval(renderProgress, 1000);
  if (programme) { setInterval(refreshProgramme, PROGRAMME_EVERY); }

  // --- Live feed ----------------------------------------------------------------

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/stations/" + slug + "/");
    // Live only once the snapshot arrives: a refused socket is opened, then closed at once.
    socket.onmessage = function (event) {
      var incoming = JSON.parse(event.data);
      if (!socketOpen) {
        if (wasOpen) { programmeChanged(); }  // updates sent while away were missed
        delay = 1000;
        socketOpen = wasOpen = true;
        live.textContent = live.dataset.on;
        live.className = "live on";
      }
      if (incoming.type === "playback_status") {
        renderStatus(incoming.data);
        if (Array.isArray(incoming.data.queue)) { renderQueue(incoming.data.queue); }  // the snapshot
      } else if (incoming.type === "queue_update") {
        if (status) { status.queue = incoming.data.queue; }
        renderQueue(incoming.data.queue || []);
      } else if (incoming.type === "notification") {
        addNotification(incoming.data);
      } else if (incoming.type === "schedule_update") {
        programmeChanged();
      }
      document.dispatchEvent(new CustomEvent("onair:" + incoming.type, {detail: incoming.data}));
    };
    socket.onclose = function (event) {
      socketOpen = false;
      live.textContent = live.dataset.off;
      live.className = "live";
      if (event.code === 4401 || event.code === 4403) { refused(); return; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  // Retrying cannot help: reload once, so the server shows its sign-in page (4401) or
  // says the station is not this user's (4403). Not again within a minute (no reload loop).
  function refused() {
    var key = "onair-socket-refused", last = 0;
    try { last = Number(sessionStorage.getItem(key)) || 0; } catch (e) { return; }
    if (Date.now() - last < 60000) { return; }
    try { sessionStorage.setItem(key, String(Date.now())); } catch (e) { return; }
    location.reload();
  }

  connect();
})();
