// factory2 overview: the live decisions. The page is rendered by the
// server with the recent decisions; this adds each new one at the top as
// the server streams it (server-sent events). EventSource reconnects by
// itself, sending the id of the last decision it got, so none is lost
// while the server still keeps it.
"use strict";
(function () {
  const rows = document.getElementById("decision-rows");
  const live = document.getElementById("live");
  if (!rows || !live || !window.EventSource) return;
  const keep = Math.max(rows.children.length, 200);
  const after = live.dataset.after || "0";
  const src = new EventSource("/api/v1/stream?after=" + encodeURIComponent(after));
  const state = (cls, text) => { live.className = "live " + cls; live.textContent = text; };
  src.onopen = () => state("on", "live");
  src.onerror = () => state("off", "reconnecting…");
  const cell = (cls, text) => {
    const td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    return td;
  };
  const when = (iso) => iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "") : "-";
  src.addEventListener("decision", (ev) => {
    const d = JSON.parse(ev.data);
    if (rows.querySelector('tr[data-seq="' + d.seq + '"]')) return;
    const tr = document.createElement("tr");
    tr.className = "decision fresh";
    tr.dataset.seq = d.seq;
    tr.dataset.kind = d.kind;
    tr.dataset.subject = d.subject;
    const time = cell("time", when(d.time));
    time.title = "triggered by an event of " + when(d.event_time);
    tr.append(time, cell("kind", d.kind));
    const subj = cell("subject", "");
    if (d.link) {
      const a = document.createElement("a");
      a.href = d.link;
      a.textContent = d.subject;
      subj.append(a);
    } else {
      subj.textContent = d.subject;
    }
    tr.append(subj, cell("verdict " + d["class"], d.verdict), cell("reason", d.reason));
    rows.prepend(tr);
    while (rows.children.length > keep) rows.lastElementChild.remove();
    const none = document.getElementById("no-decisions");
    if (none) none.remove();
    refreshSoon();
  });

  // The composes and the recent builds change with the decisions: the
  // server renders them again, at most once a second.
  let timer = null;
  const refreshSoon = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      for (const name of ["composes", "builds"]) {
        fetch("/parts/" + name, { cache: "no-store" })
          .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
          .then((html) => {
            const old = document.getElementById(name);
            const fresh = new DOMParser().parseFromString(html, "text/html").getElementById(name);
            if (old && fresh) old.replaceWith(fresh);
          })
          .catch(() => {}); // the next decision tries again
      }
    }, 1000);
  };
})();
