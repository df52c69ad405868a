import { type FormEvent, useState } from "react";
import type { Role } from "../../api/types";
import * as api from "../../api/dashboard";
import { Card, Loading, message, Problem, useLoad, when } from "./common";

const ROLES: Role[] = ["annotator", "reviewer", "lead"];

function inviteState(invite: api.Invite): string {
  if (invite.revoked_at) return "revoked";
  if (invite.used_at) return "used";
  if (new Date(invite.expires_at).getTime() < Date.now()) return "expired";
  return "open";
}

/** Members and their roles, single-use expiring invites, deactivation (admins). */
export function PeoplePanel({ projectId, isAdmin, myId }: { projectId: number; isAdmin: boolean; myId: number }) {
  const loaded = useLoad(() => Promise.all([api.members(projectId), api.invites(projectId)]), [projectId]);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [form, setForm] = useState<{ email: string; role: Role; hours: string }>({ email: "", role: "annotator", hours: "72" });
  const [created, setCreated] = useState<api.InviteCreated | null>(null);

  const act = async (action: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setProblem(null);
    try {
      await action();
      loaded.reload();
    } catch (err) {
      setProblem(message(err));
    } finally {
      setBusy(false);
    }
  };

  const invite = (event: FormEvent): void => {
    event.preventDefault();
    void act(async () => {
      const out = await api.createInvite(projectId, { email: form.email, role: form.role, expires_in_hours: Number(form.hours) || 72 });
      setCreated(out);
      setForm({ ...form, email: "" });
    });
  };

  return (
    <>
      <Problem error={problem} />
      <Card title="Invite someone" testId="invite-form">
        <form className="form form--inline" onSubmit={invite}>
          <input
            className="input"
            type="email"
            required
            placeholder="email"
            value={form.email}
            onChange={(event) => setForm({ ...form, email: event.target.value })}
            name="email"
            aria-label="email"
          />
          <select className="input" value={form.role} onChange={(event) => setForm({ ...form, role: event.target.value as Role })} aria-label="role" name="role">
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
          <label className="check">
            expires in
            <input className="input input--short" type="number" min={1} max={720} value={form.hours} onChange={(event) => setForm({ ...form, hours: event.target.value })} aria-label="hours" />
            hours
          </label>
          <button type="submit" className="button button--primary" disabled={busy} data-testid="invite-create">
            Create invite
          </button>
        </form>
        {created && (
          <div className="banner" role="status" data-testid="invite-link">
            Send this link to {created.email} (shown once; it works one time, until {when(created.expires_at)}):{" "}
            <code className="mono" data-testid="invite-url">{new URL(created.url, window.location.origin).toString()}</code>
          </div>
        )}
      </Card>
      <Loading loaded={loaded}>
        {([members, invites]) => (
          <>
            <Card title="Members" testId="members">
              <table className="table">
                <thead>
                  <tr>
                    <th>Person</th>
                    <th>Email</th>
                    <th>Role</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {members.map((m) => (
                    <tr key={m.user_id} data-testid={`member-${m.user_id}`}>
                      <td>{m.display_name || "–"}</td>
                      <td>{m.email}</td>
                      <td>
                        <select
                          className="input"
                          value={m.role}
                          disabled={busy || m.user_id === myId}
                          aria-label={`role of ${m.email}`}
                          onChange={(event) => void act(() => api.setMember(projectId, m.email, event.target.value as Role))}
                        >
                          {[...ROLES, ...(ROLES.includes(m.role) ? [] : [m.role])].map((r) => (
                            <option key={r} value={r}>
                              {r}
                            </option>
                          ))}
                        </select>
                      </td>
                      <td className="actions">
                        {m.user_id !== myId && (
                          <button
                            type="button"
                            className="button button--quiet"
                            disabled={busy}
                            onClick={() => {
                              if (window.confirm(`Remove ${m.email} from this project?`)) void act(() => api.removeMember(projectId, m.user_id));
                            }}
                          >
                            Remove
                          </button>
                        )}
                        {isAdmin && m.user_id !== myId && (
                          <button
                            type="button"
                            className="button button--quiet"
                            disabled={busy}
                            onClick={() => {
                              if (window.confirm(`Deactivate ${m.email}'s account everywhere? Their sessions end now.`)) {
                                void act(() => api.deactivateUser(m.user_id));
                              }
                            }}
                          >
                            Deactivate account
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Card>
            <Card title="Invites" testId="invites">
              {invites.length === 0 ? (
                <p className="muted">No invites yet.</p>
              ) : (
                <table className="table">
                  <thead>
                    <tr>
                      <th>Email</th>
                      <th>Role</th>
                      <th>State</th>
                      <th>Created</th>
                      <th>Expires</th>
                      <th />
                    </tr>
                  </thead>
                  <tbody>
                    {invites.map((i) => {
                      const state = inviteState(i);
                      return (
                        <tr key={i.id} data-testid={`invite-${i.id}`} data-state={state}>
                          <td>{i.email}</td>
                          <td>{i.role}</td>
                          <td>
                            <span className={`status status--${state}`}>{state}</span>
                          </td>
                          <td>{when(i.created_at)}</td>
                          <td>{when(i.expires_at)}</td>
                          <td>
                            {state === "open" && (
                              <button type="button" className="button button--quiet" disabled={busy} onClick={() => void act(() => api.revokeInvite(projectId, i.id))}>
                                Revoke
                              </button>
                            )}
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              )}
            </Card>
          </>
        )}
      </Loading>
    </>
  );
}
