import { useEffect, useState } from "react";
import * as api from "../api/endpoints";
import type { Project } from "../api/types";
import { TopBar } from "../components/TopBar";
import { ReviewScreen } from "../features/review/ReviewScreen";
import { useSession } from "../session";

export function ReviewPage({ projectId }: { projectId: number }) {
  const { outbox } = useSession();
  const [project, setProject] = useState<Project | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setProject(null);
    setError(null);
    api.project(projectId).then(setProject, (err: unknown) => setError(err instanceof Error ? err.message : String(err)));
  }, [projectId]);

  let body;
  if (error) {
    body = (
      <main className="page">
        <p className="login__error">
          Could not open project {projectId}: {error}
        </p>
      </main>
    );
  } else if (!project || !outbox) {
    body = (
      <main className="page">
        <p className="muted">loading…</p>
      </main>
    );
  } else {
    body = <ReviewScreen key={project.id} project={project} outbox={outbox} />;
  }
  return (
    <>
      <TopBar title={project ? `${project.name} · review` : "Review"} />
      {body}
    </>
  );
}
