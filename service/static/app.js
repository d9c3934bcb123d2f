// Akhbar's page: no framework, no build step. Passage text only ever goes through
// textContent / text nodes, never innerHTML: it is untrusted news content.
"use strict";

const MESSAGES = {
  fr: {
    tagline: "Posez une question sur l'actualité ; les réponses citent leurs sources.",
    uiLanguage: "Langue", question: "Question", ask: "Demander", filters: "Filtres",
    languages: "Langues :", outlet: "Média", since: "Depuis", until: "Jusqu'au",
    anyOutlet: "tous les médias", outletCount: "{name} ({n} articles)",
    placeholder: "Ex. : Quelle capacité pour le data center de Dakhla ?",
    asking: "Recherche…", questionLanguage: "Langue détectée de la question : {lang}",
    found: "{n} article(s), {p} passage(s).",
    answer: "Réponse la plus probable", answerFrom: "Source :",
    notAnswerable: "Le corpus ne semble pas contenir la réponse. Voici les passages les plus proches :",
    nothing: "Rien trouvé dans le corpus pour cette question et ces filtres.",
    noLanguage: "Cochez au moins une langue.",
    error: "Erreur : {msg}", network: "Le service ne répond pas.",
    source: "source ↗", noDate: "date inconnue", noOutlet: "média inconnu",
    aggregator: "titre d'un agrégateur : média et date non indiqués par la page",
    more: "Plus de cet article ({n})", readArticle: "Lire l'article",
  },
  es: {
    tagline: "Haga una pregunta sobre la actualidad; las respuestas citan sus fuentes.",
    uiLanguage: "Idioma", question: "Pregunta", ask: "Preguntar", filters: "Filtros",
    languages: "Idiomas:", outlet: "Medio", since: "Desde", until: "Hasta",
    anyOutlet: "todos los medios", outletCount: "{name} ({n} artículos)",
    placeholder: "Ej.: ¿Qué capacidad tendrá el centro de datos de Dajla?",
    asking: "Buscando…", questionLanguage: "Idioma detectado de la pregunta: {lang}",
    found: "{n} artículo(s), {p} pasaje(s).",
    answer: "Respuesta más probable", answerFrom: "Fuente:",
    notAnswerable: "El corpus no parece contener la respuesta. Estos son los pasajes más cercanos:",
    nothing: "No se encontró nada en el corpus para esta pregunta y estos filtros.",
    noLanguage: "Marque al menos un idioma.",
    error: "Error: {msg}", network: "El servicio no responde.",
    source: "fuente ↗", noDate: "fecha desconocida", noOutlet: "medio desconocido",
    aggregator: "titular de un agregador: la página no indica medio ni fecha",
    more: "Más de este artículo ({n})", readArticle: "Leer el artículo",
  },
  en: {
    tagline: "Ask a question about the news; answers cite their sources.",
    uiLanguage: "Language", question: "Question", ask: "Ask", filters: "Filters",
    languages: "Languages:", outlet: "Outlet", since: "Since", until: "Until",
    anyOutlet: "all outlets", outletCount: "{name} ({n} articles)",
    placeholder: "E.g. What capacity for the Dakhla data center?",
    asking: "Searching…", questionLanguage: "Detected question language: {lang}",
    found: "{n} article(s), {p} passage(s).",
    answer: "Most likely answer", answerFrom: "Source:",
    notAnswerable: "The corpus does not seem to hold the answer. These are the closest passages:",
    nothing: "Nothing found in the corpus for this question and these filters.",
    noLanguage: "Tick at least one language.",
    error: "Error: {msg}", network: "The service is not answering.",
    source: "source ↗", noDate: "unknown date", noOutlet: "unknown outlet",
    aggregator: "aggregator headline: outlet and date not given by the page",
    more: "More from this article ({n})", readArticle: "Read the article",
  },
};

// More passages than cards: several often come from one article, and are folded under it.
// Never more than the server takes (its AKHBAR_MAX_K, written into the page it serves).
const PASSAGES_ASKED = Math.max(
  1, Math.min(10, Number(document.querySelector("meta[name=akhbar-max-k]")?.content) || 10));

const $ = (sel) => document.querySelector(sel);
let uiLang = "en";
let lastData = null; // re-rendered when the UI language changes
let outlets = []; // from /v1/outlets

function t(key, vars = {}) {
  const text = (MESSAGES[uiLang] && MESSAGES[uiLang][key]) || MESSAGES.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

function pickDefaultLanguage() {
  const saved = localStorage.getItem("akhbar.uiLang");
  if (saved && MESSAGES[saved]) return saved;
  const nav = (navigator.language || "en").slice(0, 2).toLowerCase();
  return MESSAGES[nav] ? nav : "en";
}

function applyLanguage(lang) {
  uiLang = lang;
  document.documentElement.lang = lang;
  $("#ui-lang").value = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n);
  }
  $("#question").placeholder = t("placeholder");
  $("#outlet").placeholder = t("anyOutlet");
  fillOutlets();
  if (lastData) render(lastData);
}

function setStatus(text, kind = "") {
  const node = $("#status");
  node.textContent = text;
  node.className = kind;
}

function requestBody() {
  const body = { question: $("#question").value, k: PASSAGES_ASKED };
  const langs = [...document.querySelectorAll("input[name=lang]:checked")].map((x) => x.value);
  if (langs.length < 3) body.languages = langs;
  const chosen = $("#outlet").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (chosen.length) body.outlets = chosen;
  if ($("#since").value) body.since = $("#since").value;
  if ($("#until").value) body.until = $("#until").value;
  return body;
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function safeUrl(url) {
  // Only http(s) links: a stored "javascript:" URL must never become clickable.
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

// The article page, with this passage and its answer sentence marked and scrolled to.
function articleHref(p) {
  const c = p.citation;
  const q = new URLSearchParams({
    start: c.start, end: c.end, hs: p.highlight.start, he: p.highlight.end, ui: uiLang,
  });
  return `/articles/${encodeURIComponent(c.article_id)}?${q}#passage`;
}

function clampedHighlight(p) {
  const start = Math.max(0, Math.min(p.highlight.start, p.text.length));
  return [start, Math.max(start, Math.min(p.highlight.end, p.text.length))];
}

function metaLine(p) {
  const c = p.citation;
  const meta = el("div", null, { class: "meta" });
  if (c.kind === "headline" && !c.outlet && !c.published) {
    // An aggregator's ticker says nothing of where or when: say that, not "unknown".
    meta.append(el("span", t("aggregator"), { class: "outlet aggregator" }));
  } else {
    meta.append(
      el("span", c.outlet || t("noOutlet"), { class: "outlet" }), " · ",
      el("span", c.published || t("noDate"), { class: "date" }),
    );
  }
  meta.append(" · ", el("span", p.language, { class: "language" }));
  const url = c.url && safeUrl(c.url);
  if (url) {
    meta.append(" · ", el("a", t("source"), {
      href: url, class: "source", rel: "noopener noreferrer", target: "_blank",
    }));
  }
  return meta;
}

function passageBlock(p) {
  // The answer sentence is marked only where the passage stands out as an answer.
  const para = el("p", null, { class: p.answers ? "passage answers" : "passage" });
  const [start, end] = p.answers ? clampedHighlight(p) : [0, 0];
  para.append(document.createTextNode(p.text.slice(0, start)));
  if (end > start) para.append(el("mark", p.text.slice(start, end)));
  para.append(document.createTextNode(p.text.slice(end)));
  const link = el("a", t("readArticle"), { href: articleHref(p), class: "cite" });
  const wrap = el("div", null, { class: "passage-wrap" });
  wrap.append(para, link);
  return wrap;
}

// One card per article, in the order of its best passage.
function groupByArticle(passages) {
  const groups = new Map();
  for (const p of passages) {
    const id = p.citation.article_id;
    if (!groups.has(id)) groups.set(id, []);
    groups.get(id).push(p);
  }
  return [...groups.values()];
}

function renderCard(group) {
  const best = group[0];
  const c = best.citation;
  const li = el("li", null, { class: "result", "data-article-id": c.article_id });
  const heading = el("h2", null, { class: "card-title" });
  heading.append(el("a", c.title || c.article_id, { href: articleHref(best), class: "title" }));
  li.append(heading, metaLine(best), passageBlock(best));
  if (group.length > 1) {
    const more = el("details", null, { class: "more" });
    more.append(el("summary", t("more", { n: group.length - 1 })));
    for (const p of group.slice(1)) more.append(passageBlock(p));
    li.append(more);
  }
  return li;
}

function renderAnswer(data) {
  const box = $("#answer");
  box.replaceChildren();
  const p = data.answerable && data.passages.find((x) => x.answers);
  box.hidden = !p;
  if (!p) return;
  const [start, end] = clampedHighlight(p);
  const sentence = end > start ? p.text.slice(start, end) : p.text;
  const c = p.citation;
  box.append(el("h2", t("answer")), el("blockquote", sentence.trim(), { lang: p.language }));
  const cite = el("p", null, { class: "answer-source" });
  cite.append(
    t("answerFrom"), " ",
    el("a", c.title || c.article_id, { href: articleHref(p), class: "title" }),
    ` · ${c.outlet || (c.kind === "headline" ? t("aggregator") : t("noOutlet"))}`,
    ` · ${c.published || t("noDate")}`,
  );
  box.append(cite);
}

function render(data) {
  lastData = data;
  const results = $("#results");
  results.replaceChildren();
  renderAnswer(data);
  const langLine = t("questionLanguage", { lang: data.question_language });
  if (!data.passages.length) {
    setStatus(`${langLine}. ${t("nothing")}`, "warning");
    return;
  }
  const groups = groupByArticle(data.passages);
  const summary = data.answerable
    ? t("found", { n: groups.length, p: data.passages.length })
    : t("notAnswerable");
  setStatus(`${langLine}. ${summary}`, data.answerable ? "" : "warning");
  results.append(...groups.map(renderCard));
}

function clearResults() {
  lastData = null;
  $("#results").replaceChildren();
  $("#answer").replaceChildren();
  $("#answer").hidden = true;
}

function setBusy(busy) {
  // Old results stay visible but dimmed while the next answer is on its way.
  for (const sel of ["#results", "#answer"]) {
    $(sel).classList.toggle("stale", busy);
    $(sel).setAttribute("aria-busy", String(busy));
  }
  $("#submit").disabled = busy;
}

async function ask(event) {
  event.preventDefault();
  const body = requestBody();
  if (body.languages && body.languages.length === 0) {
    clearResults();
    setStatus(t("noLanguage"), "warning");
    return;
  }
  setStatus(t("asking"));
  setBusy(true);
  try {
    const resp = await fetch("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await resp.json().catch(() => null);
    if (!resp.ok || !data) {
      clearResults();
      const msg = (data && data.error && data.error.message) || `HTTP ${resp.status}`;
      setStatus(t("error", { msg }), "error");
      return;
    }
    render(data);
  } catch {
    clearResults();
    setStatus(t("network"), "error");
  } finally {
    setBusy(false);
  }
}

function fillOutlets() {
  const list = $("#outlet-list");
  list.replaceChildren(
    ...outlets.map((o) => el("option", null, {
      value: o.name, label: t("outletCount", { name: o.name, n: o.articles }),
    })),
  );
}

async function loadOutlets() {
  try {
    const resp = await fetch("/v1/outlets");
    if (resp.ok) outlets = await resp.json();
  } catch {
    outlets = []; // the filter still takes a typed name
  }
  fillOutlets();
}

document.addEventListener("DOMContentLoaded", () => {
  applyLanguage(pickDefaultLanguage());
  loadOutlets();
  $("#ui-lang").addEventListener("change", (e) => {
    localStorage.setItem("akhbar.uiLang", e.target.value);
    applyLanguage(e.target.value);
  });
  $("#ask-form").addEventListener("submit", ask);
  $("#question").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("#ask-form").requestSubmit();
    }
  });
});
