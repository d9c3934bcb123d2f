// Akhbar's page: no framework, no build step. Passage text only ever goes through
// textContent / text nodes, never innerHTML: it is untrusted news content.
"use strict";

const MESSAGES = {
  fr: {
    tagline: "Posez une question sur l'actualité ; les réponses citent leurs sources.",
    uiLanguage: "Langue", question: "Question", ask: "Demander", filters: "Filtres",
    languages: "Langues :", outlet: "Média", since: "Depuis", until: "Jusqu'au",
    placeholder: "Ex. : Quelle capacité pour le data center de Dakhla ?",
    asking: "Recherche…", questionLanguage: "Langue détectée de la question : {lang}",
    found: "{n} passage(s) trouvé(s).",
    notAnswerable: "Le corpus ne semble pas contenir la réponse. Voici les passages les plus proches :",
    nothing: "Rien trouvé dans le corpus pour cette question et ces filtres.",
    noLanguage: "Cochez au moins une langue.",
    error: "Erreur : {msg}", network: "Le service ne répond pas.",
    source: "Source", noDate: "date inconnue", noOutlet: "média inconnu",
  },
  es: {
    tagline: "Haga una pregunta sobre la actualidad; las respuestas citan sus fuentes.",
    uiLanguage: "Idioma", question: "Pregunta", ask: "Preguntar", filters: "Filtros",
    languages: "Idiomas:", outlet: "Medio", since: "Desde", until: "Hasta",
    placeholder: "Ej.: ¿Qué capacidad tendrá el centro de datos de Dajla?",
    asking: "Buscando…", questionLanguage: "Idioma detectado de la pregunta: {lang}",
    found: "{n} pasaje(s) encontrado(s).",
    notAnswerable: "El corpus no parece contener la respuesta. Estos son los pasajes más cercanos:",
    nothing: "No se encontró nada en el corpus para esta pregunta y estos filtros.",
    noLanguage: "Marque al menos un idioma.",
    error: "Error: {msg}", network: "El servicio no responde.",
    source: "Fuente", noDate: "fecha desconocida", noOutlet: "medio desconocido",
  },
  en: {
    tagline: "Ask a question about the news; answers cite their sources.",
    uiLanguage: "Language", question: "Question", ask: "Ask", filters: "Filters",
    languages: "Languages:", outlet: "Outlet", since: "Since", until: "Until",
    placeholder: "E.g. What capacity for the Dakhla data center?",
    asking: "Searching…", questionLanguage: "Detected question language: {lang}",
    found: "{n} passage(s) found.",
    notAnswerable: "The corpus does not seem to hold the answer. These are the closest passages:",
    nothing: "Nothing found in the corpus for this question and these filters.",
    noLanguage: "Tick at least one language.",
    error: "Error: {msg}", network: "The service is not answering.",
    source: "Source", noDate: "unknown date", noOutlet: "unknown outlet",
  },
};

const $ = (sel) => document.querySelector(sel);
let uiLang = "en";

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
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  $("#question").placeholder = t("placeholder");
}

function setStatus(text, kind = "") {
  const el = $("#status");
  el.textContent = text;
  el.className = kind;
}

function requestBody() {
  const body = { question: $("#question").value, k: 5 };
  const langs = [...document.querySelectorAll("input[name=lang]:checked")].map((x) => x.value);
  if (langs.length < 3) body.languages = langs;
  const outlets = $("#outlet").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (outlets.length) body.outlets = outlets;
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

function renderPassage(p) {
  const li = el("li", null, { class: "result", "data-article-id": p.citation.article_id });
  const c = p.citation;
  const href = (c.url && safeUrl(c.url)) || `/v1/articles/${encodeURIComponent(c.article_id)}`;
  const title = el("a", c.title || c.article_id, { href, class: "title", rel: "noopener" });
  if (c.url) title.setAttribute("target", "_blank");
  const heading = el("strong");
  heading.append(title);
  li.append(heading);

  const meta = el("div", null, { class: "meta" });
  meta.append(
    el("span", c.outlet || t("noOutlet"), { class: "outlet" }), " · ",
    el("span", c.published || t("noDate"), { class: "date" }), " · ",
    el("span", p.language, { class: "language" }),
  );
  li.append(meta);

  const text = p.text;
  const start = Math.max(0, Math.min(p.highlight.start, text.length));
  const end = Math.max(start, Math.min(p.highlight.end, text.length));
  const para = el("p", null, { class: "passage" });
  para.append(document.createTextNode(text.slice(0, start)));
  if (end > start) para.append(el("mark", text.slice(start, end)));
  para.append(document.createTextNode(text.slice(end)));
  li.append(para);
  return li;
}

async function ask(event) {
  event.preventDefault();
  const results = $("#results");
  const body = requestBody();
  if (body.languages && body.languages.length === 0) {
    results.replaceChildren();
    setStatus(t("noLanguage"), "warning");
    return;
  }
  setStatus(t("asking"));
  $("#submit").disabled = true;
  try {
    const resp = await fetch("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await resp.json().catch(() => null);
    results.replaceChildren();
    if (!resp.ok) {
      const msg = (data && data.error && data.error.message) || `HTTP ${resp.status}`;
      setStatus(t("error", { msg }), "error");
      return;
    }
    const langLine = t("questionLanguage", { lang: data.question_language });
    if (!data.passages.length) {
      setStatus(`${langLine}. ${t("nothing")}`, "warning");
      return;
    }
    const summary = data.answerable ? t("found", { n: data.passages.length }) : t("notAnswerable");
    setStatus(`${langLine}. ${summary}`, data.answerable ? "" : "warning");
    results.append(...data.passages.map(renderPassage));
  } catch {
    setStatus(t("network"), "error");
  } finally {
    $("#submit").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  applyLanguage(pickDefaultLanguage());
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
