import { type FormEvent, useEffect, useState } from "react";
import { ApiError, setCsrfToken } from "../api/client";
import * as api from "../api/dashboard";
import { navigate } from "../router";
import { useSession } from "../session";

/** The public page an invite link opens: who invites you to what, then a name and a password. */
export function InvitePage({ token }: { token: string }) {
  const { retry } = useSession();
  const [preview, setPreview] = useState<api.InvitePreview | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.invitePreview(token).then(setPreview, (err: unknown) =>
      setError(err instanceof ApiError && err.status === 404 ? "This invite was used, revoked or has expired." : String(err)),
    );
  }, [token]);

  const accept = async (event: FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const out = await api.acceptInvite(token, { display_name: name, password });
      setCsrfToken(out.csrf_token);
      navigate("/", { replace: true });
      retry();
    } catch (err) {
      setError(err instanceof ApiError ? (err.body.detail ?? err.code) : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login">
      <form className="login__form invite" onSubmit={(event) => void accept(event)} data-testid="invite-accept">
        <h1 className="login__title">
          Annotate <span className="brand__accent">Anyone</span>
        </h1>
        {preview && (
          <p data-testid="invite-preview">
            You are invited to <strong>{preview.project_name}</strong> as {preview.role} ({preview.email}).
          </p>
        )}
        {error && (
          <p className="login__error" role="alert">
            {error}
          </p>
        )}
        {preview && (
          <>
            <label className="login__label" htmlFor="display-name">
              Your name
            </label>
            <input id="display-name" className="login__input" value={name} onChange={(event) => setName(event.target.value)} autoComplete="name" />
            <label className="login__label" htmlFor="new-password">
              Choose a password (10 characters or more)
            </label>
            <input
              id="new-password"
              className="login__input"
              type="password"
              minLength={10}
              required
              value={password}
              onChange={(event) => setPassword(event.target.value)}
              autoComplete="new-password"
            />
            <button type="submit" className="button button--primary" disabled={busy}>
              Join
            </button>
          </>
        )}
      </form>
    </main>
  );
}
