// The course site's offline search: a BM25 ranking over the index that `helpers.course.site_search` writes
// at build time (_static/search-index.js sets window.dpSearchIndex), and the search box's wiring.
// No network: the index is a local script, loaded the first time the box is used (works on file://).
// Runs in a browser (window.dpSearch) and in node (module.exports), so tests run the same ranking.
//
// Index layout (see helpers/course/site_search.py):
//   docs:    [[page, anchor, page title, section heading, snippet], ...]   one per section
//   lengths: [number of terms per doc]          avgdl: their mean
//   terms:   {term: [doc, tf, doc, tf, ...]}    postings, term frequencies (heading terms weighted)
(function (root) {
  "use strict";

  var K1 = 1.2, B = 0.75, LIMIT = 10;

  // Words: runs of ASCII letters and digits, lower-cased (Python: re.findall("[a-z0-9]+", text.lower())).
  function tokenize(text) {
    return String(text).toLowerCase().match(/[a-z0-9]+/g) || [];
  }

  // A tiny English plural stemmer, the same rules as helpers.course.site_search.stem.
  function stem(word) {
    var n = word.length;
    if (n > 4 && word.endsWith("ies")) return word.slice(0, -3) + "y";
    if (n > 4 && /(sses|xes|ches|shes|ses)$/.test(word)) return word.slice(0, -2);
    if (n > 3 && word.endsWith("s") && !/(ss|us|is|as)$/.test(word)) return word.slice(0, -1);
    return word;
  }

  function terms(text) {
    return tokenize(text).map(stem);
  }

  // The postings of `term`; the last word of a query also matches as a prefix ("LSTM param").
  function postings(index, term, prefix) {
    var exact = index.terms[term];
    if (exact || !prefix || term.length < 3) return exact ? [exact] : [];
    var lists = [];
    for (var t in index.terms) {
      if (t.lastIndexOf(term, 0) === 0) lists.push(index.terms[t]);
    }
    return lists;
  }

  // The `limit` best sections for `query`: [{doc: [page, anchor, title, heading, snippet], score}].
  function search(index, query, limit) {
    var words = terms(query), N = index.docs.length, scores = {};
    var unique = words.filter(function (w, i) { return words.indexOf(w) === i; });
    unique.forEach(function (word, i) {
      postings(index, word, i === unique.length - 1).forEach(function (list) {
        var n = list.length / 2, idf = Math.log(1 + (N - n + 0.5) / (n + 0.5));
        for (var j = 0; j < list.length; j += 2) {
          var d = list[j], tf = list[j + 1];
          var norm = tf + K1 * (1 - B + B * index.lengths[d] / index.avgdl);
          scores[d] = (scores[d] || 0) + idf * tf * (K1 + 1) / norm;
        }
      });
    });
    return Object.keys(scores)
      .map(function (d) { return {doc: index.docs[+d], score: scores[d], id: +d}; })
      .sort(function (a, b) { return b.score - a.score || a.id - b.id; })
      .slice(0, limit || LIMIT)
      .map(function (r) { return {doc: r.doc, score: r.score}; });
  }

  var api = {tokenize: tokenize, stem: stem, terms: terms, search: search};

  if (typeof module === "object" && module.exports) {
    module.exports = api;
    return;
  }
  root.dpSearch = api;

  // ------------------------------------------------------------------------------ the search box
  function loadIndex(src, done) {
    if (root.dpSearchIndex) return done(root.dpSearchIndex);
    var script = document.createElement("script");
    script.src = src;
    script.onload = function () { done(root.dpSearchIndex); };
    document.head.appendChild(script);
  }

  function show(list, results, query) {
    list.innerHTML = "";
    if (!query.trim()) { list.hidden = true; return; }
    if (!results.length) {
      var none = document.createElement("li");
      none.className = "dp-search-none";
      none.textContent = "No section mentions that.";
      list.appendChild(none);
    }
    results.forEach(function (r) {
      var li = document.createElement("li"), a = document.createElement("a"), small = document.createElement("span");
      a.href = r.doc[0] + (r.doc[1] ? "#" + r.doc[1] : "");  // ids are already URL-safe (nbconvert quotes them)
      a.textContent = r.doc[3] || r.doc[2];
      small.className = "dp-search-page";
      small.textContent = r.doc[2] + (r.doc[4] ? " — " + r.doc[4] : "");
      li.appendChild(a);
      li.appendChild(small);
      list.appendChild(li);
    });
    list.hidden = false;
  }

  function attach() {
    var box = document.getElementById("dp-search"), list = document.getElementById("dp-search-results");
    if (!box || !list) return;
    var run = function () {
      loadIndex(box.getAttribute("data-index"), function (index) {
        show(list, search(index, box.value, LIMIT), box.value);
      });
    };
    box.addEventListener("input", run);
    box.addEventListener("focus", function () { loadIndex(box.getAttribute("data-index"), function () {}); });
    box.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { box.value = ""; show(list, [], ""); }
      if (e.key === "Enter") {
        var first = list.querySelector("a");
        if (first) root.location.href = first.href;
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", attach);
  else attach();
})(this);
