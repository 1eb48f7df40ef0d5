// The last release that landed: its server must keep working on the schema this code migrates to, since during
// a rolling upgrade its instances serve beside the new ones (docs/operations.md, "Upgrading"). Each release moves
// this to the commit of the release before it, the one its operators roll back to.
export const PREVIOUS_RELEASE = '832cb6b'
