import { useEffect, useState } from "react";
import * as api from "../api/endpoints";
import type { Project } from "../api/types";
import { TopBar } from "../components/TopBar";
import { Dashboard } from "../features/dashboard/Dashboard";
import type { Section } from "../features/dashboard/sections";
import { useSession } from "../session";

export function DashboardPage({ projectId, section }: { projectId: number; section: Section }) {
  const { state } = useSession();
  const [project, setProject] = useState<Project | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setProject(null);
    setError(null);
    api.project(projectId).then(setProject, (err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  }, [projectId]);

  const me = state.status === "signed_in" ? state.me.user : null;
  let body;
  if (error) {
    body = (
      <main className="page">
        <p className="login__error">
          Could not open project {projectId}: {error}
        </p>
      </main>
    );
  } else if (!project || !me) {
    body = (
      <main className="page">
        <p className="muted">loading…</p>
      </main>
    );
  } else {
    body = <Dashboard project={project} section={section} me={me} />;
  }
  return (
    <>
      <TopBar title={project ? `${project.name} · dashboard` : "Dashboard"} />
      {body}
    </>
  );
}
