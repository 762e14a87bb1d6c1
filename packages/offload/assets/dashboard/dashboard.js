// The Offload dashboard's script: live counts and rows over server-sent events, and Retry and
// Cancel sent with fetch so that the page need not reload. Every page works without it.
/* global document, window, EventSource, fetch, URLSearchParams, FormData, DOMParser */
'use strict';

(function () {
  const body = document.body;
  const eventsPath = body.dataset.events;
  if (!eventsPath) return;

  function notice(text, isError) {
    const el = document.getElementById('notice');
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
    el.classList.toggle('error', Boolean(isError));
  }

  /** Shows a task's new state in every element that shows that task. */
  function applyTask(update) {
    let reload = false;
    for (const el of document.querySelectorAll('[data-task-id]')) {
      if (el.dataset.taskId !== update.id) continue;
      if (el.dataset.state !== update.state && el.hasAttribute('data-reload-on-change'))
        reload = true;
      el.dataset.state = update.state;
      for (const field of el.querySelectorAll('[data-field="state"]'))
        field.textContent = update.state;
      for (const field of el.querySelectorAll('[data-field="attempts"]'))
        field.textContent = update.attempts;
    }
    if (reload) refreshMain();
  }

  let refreshing = null;
  /** Reads the page again and swaps its main part (the task page: errors, times, result). */
  function refreshMain() {
    if (refreshing) return;
    refreshing = fetch(window.location.href, { headers: { accept: 'text/html' } })
      .then((response) => (response.ok ? response.text() : null))
      .then((text) => {
        if (text === null) return;
        const next = new DOMParser().parseFromString(text, 'text/html').getElementById('main');
        const main = document.getElementById('main');
        if (next && main) main.replaceChildren(...next.childNodes);
        bindForms();
      })
      .catch(() => undefined)
      .finally(() => {
        refreshing = null;
      });
  }

  function applyCounts(data) {
    const totals = {};
    const byName = new Map();
    for (const { name, state, count } of data.counts) {
      totals[state] = (totals[state] || 0) + count;
      byName.set(name + '\u0000' + state, count);
    }
    for (const el of document.querySelectorAll('[data-count]')) {
      const state = el.dataset.count;
      const name = el.dataset.countName;
      const value =
        name === undefined ? totals[state] || 0 : byName.get(name + '\u0000' + state) || 0;
      el.textContent = String(value);
    }
    for (const el of document.querySelectorAll('[data-live-lag]')) el.textContent = data.lag;
  }

  function bindForms() {
    for (const form of document.querySelectorAll('form[data-live-action]')) {
      if (form.dataset.bound) continue;
      form.dataset.bound = '1';
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        const button = form.querySelector('button');
        if (button) button.disabled = true;
        fetch(form.action, {
          method: 'POST',
          headers: { accept: 'application/json' },
          body: new URLSearchParams(new FormData(form)),
        })
          .then((response) => response.json().then((answer) => ({ ok: response.ok, answer })))
          .then(({ ok, answer }) => {
            if (ok && answer.task) applyTask(answer.task);
            notice(ok ? answer.notice : answer.error, !ok);
          })
          .catch(() => notice('The request failed; reload the page.', true))
          .finally(() => {
            if (button) button.disabled = false;
          });
      });
    }
  }

  function connect() {
    const ids = [];
    for (const el of document.querySelectorAll('[data-task-id]')) ids.push(el.dataset.taskId);
    const url = eventsPath + (ids.length > 0 ? '?ids=' + encodeURIComponent(ids.join(',')) : '');
    const source = new EventSource(url);
    source.addEventListener('tasks', (event) => {
      for (const update of JSON.parse(event.data)) applyTask(update);
    });
    source.addEventListener('counts', (event) => applyCounts(JSON.parse(event.data)));
    window.addEventListener('pagehide', () => source.close());
  }

  bindForms();
  connect();
})();
