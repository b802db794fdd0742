// Passkeys on the hosted pages: runs navigator.credentials.create() and .get() with the options
// the server's ceremony start returns, and posts the browser's answer back. Served as a file
// (the pages' policy allows scripts from the server only, never inline); the pages work
// without it, minus passkeys.
//
// A button with data-passkey="register" or "sign-in" starts a ceremony: it posts JSON to its
// data-options URL, hands `options.publicKey` (binary fields base64url-encoded) to the browser,
// and posts {ceremony_id, credential} to its data-finish URL; the answer's `location` is where
// the page goes next. An element #passkey-error shows what went wrong.
"use strict";

(function () {
  function fromB64url(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "===".slice((b64.length + 3) % 4);
    const raw = atob(padded);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let raw = "";
    for (let i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeOptions(publicKey) {
    publicKey.challenge = fromB64url(publicKey.challenge);
    if (publicKey.user) publicKey.user.id = fromB64url(publicKey.user.id);
    for (const list of [publicKey.excludeCredentials, publicKey.allowCredentials]) {
      for (const credential of list || []) credential.id = fromB64url(credential.id);
    }
    return publicKey;
  }

  function encodeCredential(credential) {
    const response = credential.response;
    const encoded = {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: { clientDataJSON: toB64url(response.clientDataJSON) },
      clientExtensionResults: credential.getClientExtensionResults(),
    };
    if (response.attestationObject) {
      encoded.response.attestationObject = toB64url(response.attestationObject);
      if (response.getTransports) encoded.response.transports = response.getTransports();
    } else {
      encoded.response.authenticatorData = toB64url(response.authenticatorData);
      encoded.response.signature = toB64url(response.signature);
      if (response.userHandle) encoded.response.userHandle = toB64url(response.userHandle);
    }
    return encoded;
  }

  async function postJson(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.message || "The passkey was not accepted.");
    return answer;
  }

  function showError(message) {
    const error = document.getElementById("passkey-error");
    if (error) {
      error.textContent = message;
      error.hidden = false;
    }
  }

  async function run(button) {
    const kind = button.dataset.passkey;
    const request = {};
    if (kind === "register") {
      const name = document.getElementById("passkey_name");
      request.name = name ? name.value : "";
    }
    const started = await postJson(button.dataset.options, request);
    const publicKey = decodeOptions(started.options.publicKey);
    const credential =
      kind === "register"
        ? await navigator.credentials.create({ publicKey })
        : await navigator.credentials.get({ publicKey });
    const finished = await postJson(button.dataset.finish, {
      ceremony_id: started.ceremony_id,
      credential: encodeCredential(credential),
      return_to: button.dataset.returnTo || null,
    });
    window.location.assign(finished.location);
  }

  function wire() {
    if (!window.PublicKeyCredential) return;
    for (const button of document.querySelectorAll("[data-passkey]")) {
      const part = button.closest("[data-passkey-part]") || button;
      part.hidden = false;
      button.addEventListener("click", (event) => {
        event.preventDefault();
        button.disabled = true;
        run(button)
          .catch((error) => showError(error.message || String(error)))
          .finally(() => {
            button.disabled = false;
          });
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wire);
  } else {
    wire();
  }
})();
