//! The letter outbox: one A4 PDF per letter (recipient block, then the text), written where a print shop's
//! job picks it up. Built-in PDF fonts only, so nothing is embedded or looked up.

use std::path::PathBuf;

use async_trait::async_trait;
use gatehouse_core::outbox::Envelope;
use gatehouse_core::ports::OutboxMessage;
use printpdf::{BuiltinFont, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem};

use super::{Delivery, DeliveryError, write_file_atomically};

pub struct LetterOutbox {
    dir: PathBuf,
}

impl LetterOutbox {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

/// Text lines from `top` (mm from the page's bottom) down, in `font` at `size`.
fn text_block(ops: &mut Vec<Op>, top: f32, font: BuiltinFont, size: f32, lines: &[&str]) {
    ops.push(Op::StartTextSection);
    ops.push(Op::SetTextCursor { pos: Point::new(Mm(25.0), Mm(top)) });
    ops.push(Op::SetFont { font: PdfFontHandle::Builtin(font), size: Pt(size) });
    ops.push(Op::SetLineHeight { lh: Pt(size * 1.4) });
    for line in lines {
        ops.push(Op::ShowText { items: vec![TextItem::Text((*line).to_owned())] });
        ops.push(Op::AddLineBreak);
    }
    ops.push(Op::EndTextSection);
}

/// The PDF of a letter: the recipient block where a window envelope shows it, the body below.
pub fn render_pdf(envelope: &Envelope) -> Vec<u8> {
    let mut doc = PdfDocument::new("Gatehouse letter");
    let recipient: Vec<&str> = envelope.to.lines().collect();
    let body: Vec<&str> = envelope.body.lines().collect();
    let mut ops = Vec::new();
    text_block(&mut ops, 245.0, BuiltinFont::Helvetica, 11.0, &recipient);
    // A one-time password must be read exactly: the body uses a fixed-width face.
    text_block(&mut ops, 200.0, BuiltinFont::Courier, 10.5, &body);
    let page = PdfPage::new(Mm(210.0), Mm(297.0), ops);
    doc.with_pages(vec![page]).save(&PdfSaveOptions::default(), &mut Vec::new())
}

#[async_trait]
impl Delivery for LetterOutbox {
    async fn deliver(&self, message: &OutboxMessage, envelope: &Envelope) -> Result<(), DeliveryError> {
        let pdf = render_pdf(envelope);
        let name = format!("{}-{}.pdf", message.created_at, message.id);
        // Written whole or not at all, so a print job never picks up half a letter.
        let path = write_file_atomically(self.dir.clone(), name, pdf).await?;
        tracing::info!(template = %envelope.template, path = %path.display(), "letter outbox: letter written");
        Ok(())
    }

    fn describe(&self) -> String {
        format!("letter outbox {}", self.dir.display())
    }
}
