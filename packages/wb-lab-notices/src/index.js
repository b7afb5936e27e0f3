/*
 * The workbench's notices in JupyterLab.
 *
 * The server extension (wb_lab_notices) emits each notice as a jupyter_server
 * event; this plugin listens on JupyterLab's event stream, shows the notice as
 * a notification that stays until dismissed and, when the notice asks for it,
 * saves every open document with unsaved changes and reports the count (and
 * any path that failed) back to the server.
 */
import { Notification } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

const SCHEMA_ID = 'urn:wbspawner:events:notice';

/** The open documents' contexts, each once (a document open twice shares one). */
function openContexts(app) {
  const contexts = new Set();
  for (const widget of app.shell.widgets('main')) {
    const context = widget.context;
    if (context && context.model && !context.isDisposed) {
      contexts.add(context);
    }
  }
  return [...contexts];
}

/** Save every open document with unsaved changes; what was saved and what failed. */
async function saveAll(app) {
  let documents = 0;
  const failed = [];
  for (const context of openContexts(app)) {
    if (!context.model.dirty) {
      continue;
    }
    try {
      await context.save();
      documents += 1;
    } catch (error) {
      console.error(`wb-lab-notices: could not save ${context.path}`, error);
      failed.push(context.path);
    }
  }
  return { documents, failed };
}

async function report(settings, id, saved) {
  const url = URLExt.join(
    settings.baseUrl,
    'wbspawner/notices',
    encodeURIComponent(id),
    'saved'
  );
  const response = await ServerConnection.makeRequest(
    url,
    { method: 'POST', body: JSON.stringify(saved) },
    settings
  );
  if (!response.ok) {
    console.error(`wb-lab-notices: report of ${id} refused: ${response.status}`);
  }
}

function savedText(saved) {
  if (saved.failed.length) {
    return `Could not save ${saved.failed.join(', ')}: save or download it now.`;
  }
  if (saved.documents === 1) {
    return 'Your open document was saved.';
  }
  return saved.documents
    ? `Your ${saved.documents} open documents were saved.`
    : 'Nothing was left unsaved.';
}

async function onNotice(app, notice) {
  const type = notice.kind === 'info' ? 'info' : 'warning';
  if (!notice.save) {
    Notification.emit(notice.message, type, { autoClose: false });
    return;
  }
  const id = Notification.emit(
    `${notice.message} Saving your open documents…`,
    type,
    { autoClose: false }
  );
  const saved = await saveAll(app);
  Notification.update({
    id,
    message: `${notice.message} ${savedText(saved)}`,
    type: saved.failed.length ? 'error' : type,
    autoClose: false
  });
  await report(app.serviceManager.serverSettings, notice.id, saved);
}

const plugin = {
  id: 'wb-lab-notices:plugin',
  description:
    "Shows the workbench's notices and saves open documents when one asks.",
  autoStart: true,
  activate: app => {
    app.serviceManager.events.stream.connect((_, event) => {
      if (event.schema_id !== SCHEMA_ID) {
        return;
      }
      onNotice(app, event).catch(error =>
        console.error('wb-lab-notices: notice not handled', error)
      );
    });
  }
};

export default plugin;
