/* global document, fetch, EventSource, window */
// The inbox of the signed-in user: the list, the unread count, read marks, and new messages live
// through EventSource, which reconnects by itself and sends Last-Event-ID so none is lost.
const list = document.getElementById('messages');
const unreadBadge = document.getElementById('unread');
const status = document.getElementById('status');

async function main() {
  const { recipient, token } = await (await fetch('/session')).json();
  const base = `/api/recipients/${encodeURIComponent(recipient)}/inbox`;
  const api = (path, method = 'GET') =>
    fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}` } }).then((r) =>
      r.json(),
    );

  const setUnread = (count) => {
    unreadBadge.textContent = String(count);
    unreadBadge.dataset.count = String(count);
  };
  const show = (message, where) => {
    if (document.getElementById(`message-${message.id}`)) return; // shown already
    const item = document.createElement('li');
    item.id = `message-${message.id}`;
    item.dataset.id = String(message.id);
    item.className = message.readAt === null ? 'unread' : 'read';
    const title = document.createElement('strong');
    title.textContent = message.subject ?? message.title ?? '(no subject)';
    const body = document.createElement('p');
    body.textContent = message.body ?? '';
    const read = document.createElement('button');
    read.textContent = 'Mark read';
    read.addEventListener('click', async () => {
      const answer = await api(`/${message.id}/read`, 'POST');
      item.className = 'read';
      setUnread(answer.unread);
    });
    item.append(read, title, body);
    if (where === 'top') list.prepend(item);
    else list.append(item);
  };

  const page = await api('?limit=50');
  page.messages.forEach((message) => show(message, 'bottom'));
  setUnread(page.unread);
  let unread = page.unread;
  document.getElementById('read-all').addEventListener('click', async () => {
    const answer = await api('/read-all', 'POST');
    for (const item of list.children) item.className = 'read';
    setUnread((unread = answer.unread));
  });

  // From the newest message listed on; after a reconnect the browser's Last-Event-ID takes over.
  const after = page.messages[0]?.id ?? 0;
  const stream = new EventSource(`${base}/stream?after=${after}&access_token=${token}`);
  stream.onopen = () => {
    status.dataset.state = 'open';
    status.textContent = 'live';
  };
  stream.onerror = () => {
    status.dataset.state = 'reconnecting';
    status.textContent = 'reconnecting…';
  };
  // Every event id the stream delivered, in order (the page's tests read it).
  window.inboxEventIds = [];
  stream.onmessage = (event) => {
    window.inboxEventIds.push(Number(event.lastEventId));
    const message = JSON.parse(event.data);
    if (document.getElementById(`message-${message.id}`)) return;
    show(message, 'top');
    unread = Number(unreadBadge.dataset.count) + 1;
    setUnread(unread);
  };
}

main().catch((error) => {
  status.dataset.state = 'failed';
  status.textContent = `failed: ${error.message}`;
});
