// fetchscope report: expands packet rows into their decoded layers. Everything shown
// comes from the embedded events and is inserted as text, never as markup.
(function () {
  'use strict';
  var source = document.getElementById('fetchscope-events');
  var table = document.getElementById('packets');
  if (!source || !table) { return; }
  var events = JSON.parse(source.textContent);
  var packets = {};
  events.forEach(function (e) {
    if (e.type === 'packet') { packets[e.number] = e; }
  });
  var skip = { type: 1, t_us: 1, dir: 1, len: 1, phase: 1, summary: 1, number: 1 };

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) { n.className = cls; }
    if (text !== undefined) { n.textContent = text; }
    return n;
  }

  function scalar(v) {
    if (v === null) { return 'null'; }
    if (Array.isArray(v) && v.every(function (x) { return typeof x !== 'object' || x === null; })) {
      return v.join(', ');
    }
    return String(v);
  }

  // A table of an object's fields; nested objects and arrays of objects nest.
  function fields(obj) {
    var t = el('table');
    Object.keys(obj).forEach(function (k) {
      var v = obj[k];
      var tr = el('tr');
      tr.appendChild(el('td', null, k));
      var td = el('td');
      if (v !== null && typeof v === 'object' &&
          !(Array.isArray(v) && v.every(function (x) { return typeof x !== 'object' || x === null; }))) {
        td.appendChild(layer(null, v));
      } else {
        td.textContent = scalar(v);
      }
      tr.appendChild(td);
      t.appendChild(tr);
    });
    return t;
  }

  function layer(name, v) {
    var box = el('div', 'layer');
    if (name) { box.appendChild(el('div', 'name', name)); }
    if (Array.isArray(v)) {
      v.forEach(function (item, i) {
        if (item !== null && typeof item === 'object') {
          box.appendChild(layer(name ? name + ' ' + (i + 1) : null, item));
        } else {
          box.appendChild(el('div', 'mono', scalar(item)));
        }
      });
    } else if (v !== null && typeof v === 'object') {
      box.appendChild(fields(v));
    } else {
      box.appendChild(el('div', 'mono', scalar(v)));
    }
    return box;
  }

  function details(p) {
    var frag = document.createDocumentFragment();
    Object.keys(p).forEach(function (k) {
      if (!skip[k]) { frag.appendChild(layer(k, p[k])); }
    });
    return frag;
  }

  function toggle(tr, open) {
    var next = tr.nextElementSibling;
    var isOpen = next && next.classList.contains('pkt-detail');
    if (open === undefined) { open = !isOpen; }
    if (open && !isOpen) {
      var p = packets[tr.getAttribute('data-n')];
      if (!p) { return; }
      var d = el('tr', 'pkt-detail');
      var td = el('td');
      td.colSpan = tr.children.length;
      td.appendChild(details(p));
      d.appendChild(td);
      tr.parentNode.insertBefore(d, tr.nextSibling);
      tr.classList.add('open');
    } else if (!open && isOpen) {
      next.parentNode.removeChild(next);
      tr.classList.remove('open');
    }
  }

  table.addEventListener('click', function (ev) {
    var tr = ev.target.closest('tr.pkt');
    if (tr) { toggle(tr); }
  });
  table.addEventListener('keydown', function (ev) {
    if (ev.key !== 'Enter' && ev.key !== ' ') { return; }
    var tr = ev.target.closest('tr.pkt');
    if (tr) { ev.preventDefault(); toggle(tr); }
  });

  var all = document.getElementById('expand-all');
  if (all) {
    all.addEventListener('click', function () {
      var rows = table.querySelectorAll('tr.pkt');
      var open = all.getAttribute('data-open') !== '1';
      rows.forEach(function (tr) { toggle(tr, open); });
      all.setAttribute('data-open', open ? '1' : '0');
      all.textContent = open ? 'Collapse all' : 'Expand all';
    });
  }

  // report.html#p7 opens packet 7 (links from the ladder diagram use this too).
  function fromHash() {
    var m = /^#p(\d+)$/.exec(window.location.hash);
    if (!m) { return; }
    var tr = document.getElementById('p' + m[1]);
    if (tr) {
      toggle(tr, true);
      tr.scrollIntoView({ block: 'center' });
    }
  }
  window.addEventListener('hashchange', fromHash);
  fromHash();
}());
