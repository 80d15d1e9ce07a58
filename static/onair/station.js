// Live station page: one WebSocket to /ws/stations/<slug>/, reconnecting with backoff.
(function () {
  "use strict";
  var root = document.getElementById("station");
  if (!root) { return; }
  var slug = root.dataset.slug;
  var live = document.getElementById("live-state");
  var worker = document.getElementById("worker-state");
  var list = document.getElementById("notifications");
  var delay = 1000;

  function showWorker(up) {
    worker.textContent = up ? worker.dataset.upText : worker.dataset.downText;
    worker.className = up ? "up" : "down";
  }

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

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/stations/" + slug + "/");
    socket.onopen = function () {
      delay = 1000;
      live.textContent = live.dataset.on;
      live.className = "live on";
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "playback_status") {
        showWorker(message.data.worker && message.data.worker.up);
      } else if (message.type === "notification") {
        addNotification(message.data);
      }
      document.dispatchEvent(new CustomEvent("onair:" + message.type, {detail: message.data}));
    };
    socket.onclose = function (event) {
      live.textContent = live.dataset.off;
      live.className = "live";
      if (event.code === 4401 || event.code === 4403) { return; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
