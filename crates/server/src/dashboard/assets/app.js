// edgekeep dashboard: WebAuthn ceremonies and writes through the JSON API. No inline script;
// served from /assets under a strict CSP. Every write sends the session's CSRF token.

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? '';

function alertBox() {
  return document.querySelector('[role="alert"]');
}

function show(message) {
  const box = alertBox();
  if (box) {
    box.textContent = message;
    box.hidden = false;
  }
}

async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf();
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const text = await response.text();
  const value = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error(value?.message ?? `the server answered ${response.status}`);
    error.code = value?.code;
    throw error;
  }
  return value;
}

// Owner-level actions need a passkey assertion within the last 5 minutes: on
// `step_up_required`, confirm with the passkey once and send the change again.
async function stepUp() {
  const started = await call('POST', '/v1/auth/step-up/begin', {});
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(started.options.publicKey);
  const credential = await navigator.credentials.get({ publicKey });
  await call('POST', '/v1/auth/step-up/finish', {
    ceremony: started.ceremony,
    response: credential.toJSON(),
  });
}

async function callStepped(method, path, body) {
  try {
    return await call(method, path, body);
  } catch (error) {
    if (error.code !== 'step_up_required') throw error;
    await stepUp();
    return call(method, path, body);
  }
}

function supportsPasskeys() {
  return typeof PublicKeyCredential !== 'undefined' &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function';
}

async function signInWithPasskey() {
  if (!supportsPasskeys()) throw new Error('this browser cannot use passkeys');
  const started = await call('POST', '/v1/auth/passkey/begin', {});
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(started.options.publicKey);
  const credential = await navigator.credentials.get({ publicKey, mediation: 'optional' });
  await call('POST', '/v1/auth/passkey/finish', {
    ceremony: started.ceremony,
    response: credential.toJSON(),
  });
  window.location.assign('/fleet');
}

async function acceptInvitation(form) {
  if (!supportsPasskeys()) throw new Error('this browser cannot use passkeys');
  const token = decodeURIComponent(window.location.hash.slice(1));
  if (!token) throw new Error('the invitation link is incomplete: open the whole link you were sent');
  const data = new FormData(form);
  const started = await call('POST', '/v1/auth/invitations/begin', {
    token,
    display_name: data.get('display_name'),
  });
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(started.options.publicKey);
  const credential = await navigator.credentials.create({ publicKey });
  const name = data.get('name');
  await call('POST', '/v1/auth/invitations/finish', {
    ceremony: started.ceremony,
    response: credential.toJSON(),
    ...(name ? { name } : {}),
  });
  history.replaceState(null, '', '/invite');
  window.location.assign('/fleet');
}

// Another passkey for the signed-in person (a step-up first when the last one is old).
async function addPasskey(form) {
  if (!supportsPasskeys()) throw new Error('this browser cannot use passkeys');
  const started = await callStepped('POST', '/v1/me/passkeys/begin', {});
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(started.options.publicKey);
  const credential = await navigator.credentials.create({ publicKey });
  const name = new FormData(form).get('name')?.trim();
  await call('POST', '/v1/me/passkeys/finish', {
    ceremony: started.ceremony,
    response: credential.toJSON(),
    ...(name ? { name } : {}),
  });
  window.location.reload();
}

function signInThroughProvider(form, provider) {
  const data = new FormData(form);
  const start = new URL(`/v1/auth/${provider}/${encodeURIComponent(data.get('org_id'))}/start`,
    window.location.origin);
  const hint = data.get('login_hint');
  if (provider === 'oidc' && hint) start.searchParams.set('login_hint', hint);
  window.location.assign(start.href);
}

async function signOut() {
  await call('POST', '/v1/auth/logout');
  window.location.assign('/login');
}

// A form bound to the JSON API: `data-api` is the path, `data-method` the method (POST by
// default), `data-confirm` the question asked first. Inputs become the JSON body:
// `data-type="percent"` sends basis points, `data-type="model-version"` (`model@version`) sends
// `model` and `version`, `data-type="list"` a list split on commas and spaces, a checkbox
// `true` or `false`; empty inputs are left out. On success the page reloads to show the new
// state, except for a form with `data-reveal`: it shows that field of the answer (a secret shown
// once), prefixed by `data-reveal-prefix` as a link on this origin when given.
async function submitToApi(form) {
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) return;
  const body = {};
  for (const input of form.querySelectorAll('input[name], select[name], textarea[name]')) {
    if (input.type === 'checkbox') {
      body[input.name] = input.checked;
      continue;
    }
    const value = input.value.trim();
    if (value === '') continue;
    switch (input.dataset.type) {
      case 'list':
        body[input.name] = value.split(/[\s,]+/).filter(Boolean);
        break;
      case 'percent':
        body[input.name] = Math.round(Number(value) * 100);
        break;
      case 'model-version': {
        const at = value.lastIndexOf('@');
        body.model = value.slice(0, at);
        body.version = Number(value.slice(at + 1));
        break;
      }
      default:
        body[input.name] = value;
    }
  }
  const answer = await callStepped(
    form.dataset.method ?? 'POST',
    form.dataset.api,
    Object.keys(body).length ? body : undefined,
  );
  const field = form.dataset.reveal;
  if (!field) {
    window.location.reload();
    return;
  }
  const output = form.querySelector('output');
  const secret = answer?.[field] ?? '';
  const prefix = form.dataset.revealPrefix;
  output.textContent = prefix ? new URL(prefix + secret, window.location.origin).href : secret;
  output.hidden = false;
  show('Copy it now: it is shown only this once.');
}

function guarded(work) {
  return async (event) => {
    event.preventDefault();
    const control = event.submitter ?? event.currentTarget;
    if (control) control.disabled = true;
    try {
      await work(event);
    } catch (error) {
      show(error.message || String(error));
    } finally {
      if (control) control.disabled = false;
    }
  };
}

function bind() {
  for (const button of document.querySelectorAll('[data-action="passkey-sign-in"]')) {
    button.addEventListener('click', guarded(signInWithPasskey));
  }
  for (const button of document.querySelectorAll('[data-action="logout"]')) {
    button.addEventListener('click', guarded(signOut));
  }
  for (const form of document.querySelectorAll('form[data-action="accept-invitation"]')) {
    form.addEventListener('submit', guarded(() => acceptInvitation(form)));
  }
  for (const form of document.querySelectorAll('form[data-action="add-passkey"]')) {
    form.addEventListener('submit', guarded(() => addPasskey(form)));
  }
  for (const form of document.querySelectorAll('form[data-api]')) {
    form.addEventListener('submit', guarded(() => submitToApi(form)));
  }
  for (const form of document.querySelectorAll('form[data-action="idp-sign-in"]')) {
    form.addEventListener('submit', guarded((event) =>
      signInThroughProvider(form, event.submitter?.value === 'saml' ? 'saml' : 'oidc')));
  }
}

bind();
